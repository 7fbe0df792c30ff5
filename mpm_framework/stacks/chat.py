"""ChatStack: vision encoder -> connector -> pivot LLM."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts.connector import Connector
from ..contracts.language import LanguagePack
from ..contracts.llm import LMOutput, PivotLLM
from ..contracts.prompt import PromptEncoding, Turn
from ..contracts.vision import VisionEncoder
from ..errors import MPMError
from .base import Stack


def scatter_image_features(
    embeds: torch.Tensor, image_mask: torch.Tensor, features: torch.Tensor | None
) -> torch.Tensor:
    """Overwrite the embeddings at image slots with image features, in order.

    ``features`` is (num_images, M, D); the slots of image i are the i-th run of
    M True values in row-major order. A count mismatch is an error, never a
    silent truncation (a classic source of zero loss in peers)."""
    slots = int(image_mask.sum())
    given = 0 if features is None else features.shape[0] * features.shape[1]
    if slots != given:
        per_image = features.shape[1] if features is not None and features.dim() == 3 else "?"
        raise MPMError(
            f"image slot mismatch: the prompts hold {slots} image placeholder tokens but "
            f"{0 if features is None else features.shape[0]} image(s) x {per_image} features "
            f"= {given} were given. Each '<image>' marker must come with exactly one image."
        )
    if slots == 0:
        return embeds
    out = embeds.clone()
    out[image_mask] = features.reshape(-1, features.shape[-1]).to(out.dtype)
    return out


class ChatStack(Stack):
    """Image -> text. The stack knows no LLM internals: prompts, batching and
    decoding state all come through the :class:`PivotLLM` contract."""

    kind = "chat"

    def __init__(
        self,
        llm: PivotLLM,
        vision: VisionEncoder,
        connector: Connector,
        languages: dict[str, LanguagePack] | None = None,
        config: Any = None,
    ) -> None:
        super().__init__()
        self.llm, self.vision, self.connector = llm, vision, connector
        self.languages = languages or {}
        self.config = config

    @property
    def num_image_tokens(self) -> int:
        return self.connector.num_output_tokens(self.vision.num_output_tokens)

    @property
    def device(self) -> torch.device:
        if self.placed_on is not None:  # layers placed across devices (offload): their main device
            return self.placed_on
        return next(self.llm.parameters()).device

    def components(self) -> dict[str, nn.Module]:
        return {"vision": self.vision, "connector": self.connector, "llm": self.llm}

    # -- inputs ----------------------------------------------------------------
    def image_transform(self, train: bool = False):
        return self.vision.image_transform(train=train)

    def encode_conversation(self, turns: list[Turn], add_generation_prompt: bool = False) -> PromptEncoding:
        return self.llm.format_prompt(turns, self.num_image_tokens, add_generation_prompt)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, M, llm_width) features ready for the image slots."""
        features = self.vision(pixel_values)
        # Components may run in different dtypes (model.vision.dtype=bf16, a connector in fp32):
        # the connector takes its own; embed() casts its output to the LLM's.
        weight = next(self.connector.parameters(), None)
        if weight is not None and weight.is_floating_point() and features.dtype != weight.dtype:
            features = features.to(weight.dtype)
        return self.connector(features)

    def embed(
        self, batch: dict[str, torch.Tensor], image_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token embeddings with image features scattered into the image slots."""
        embeds = self.llm.embed_tokens(batch["input_ids"])
        if image_features is None and batch.get("pixel_values") is not None:
            image_features = self.encode_images(batch["pixel_values"].to(embeds.device))
        return scatter_image_features(embeds, batch["image_mask"].bool(), image_features)

    def forward(self, batch: dict[str, torch.Tensor], output_hidden_states: bool = False) -> LMOutput:
        embeds = self.embed(batch)
        return self.llm(embeds, batch, labels=batch.get("labels"), output_hidden_states=output_hidden_states)

    # -- inference (implemented in mpm_framework.inference) ----------------------
    def chat(self, image, question: str, history=None, **generation):
        from ..inference.chat import chat

        return chat(self, image, question, history=history, **generation)

    def stream_chat(self, image, question: str, history=None, **generation):
        from ..inference.chat import stream_chat

        return stream_chat(self, image, question, history=history, **generation)

    def generate(self, images, questions, **generation):
        from ..inference.chat import generate_batch

        return generate_batch(self, images, questions, **generation)
