"""PaintStack: pivot LLM (frozen) -> adapter -> image decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts.decoder import DECODER_GROUPS, ImageDecoder
from ..contracts.language import LanguagePack
from ..contracts.llm import PivotLLM
from ..errors import ConfigError, DataError
from .base import Stack

EMPTY_CAPTION = ""


class PaintStack(Stack):
    """Text -> image. The pivot LLM only *reads* prompts: it is frozen (and kept
    in eval mode) so that its cross-lingual alignment, learnt from text, is what
    carries an English-trained decoder to other languages."""

    kind = "paint"

    def __init__(
        self,
        llm: PivotLLM,
        decoder: ImageDecoder,
        languages: dict[str, LanguagePack] | None = None,
        config: Any = None,
    ) -> None:
        super().__init__()
        self.llm, self.decoder = llm, decoder
        self.languages = languages or {}
        self.config = config
        # Share of training captions replaced by the empty caption, so that the
        # decoder also learns the unconditional model that guidance subtracts.
        self.caption_dropout = _caption_dropout(config)
        self.llm.requires_grad_(False)
        self.llm.eval()

    # -- composition -------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        return {"llm": self.llm, "decoder": self.decoder}

    def default_trainable(self) -> list[str]:
        """The decoder's configured trainable set (``adapter`` by default in VisCPM
        terms, optionally with cross-attention or the whole UNet)."""
        return list(self.decoder.default_trainable())

    def set_trainable(self, trainable: list[str], frozen: list[str] = ()) -> dict[str, tuple[int, int]]:
        bad = [spec for spec in trainable if spec.partition(".")[0] == "llm"]
        if bad:
            raise ConfigError(
                f"the paint stage keeps the pivot LLM frozen, but the trainable set names {', '.join(bad)}; "
                f"train decoder groups only ({', '.join(f'decoder.{g}' for g in DECODER_GROUPS)})"
            )
        return super().set_trainable(trainable, frozen)

    def train(self, mode: bool = True) -> PaintStack:
        super().train(mode)
        self.llm.eval()  # frozen: no dropout, whatever the stage does
        return self

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.decoder.image_size)

    def image_transform(self, train: bool = False):
        """PIL -> (3, H, W) in [-1, 1] at the decoder's resolution. No flips, even
        in training: captions name positions ('on the left')."""
        from ..imaging import ImageTransform

        return ImageTransform(self.image_size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), train=False)

    # -- prompts -----------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-layer LLM hidden states of each prompt and their mask."""
        # an LLM may encode paint prompts its own way (CPM-Bee: VisCPM's {"caption", "objects"})
        encodings = [self.llm.encode_paint_prompt(p) for p in prompts]
        batch = self.llm.collate(encodings, padding_side="right")
        batch = {k: v.to(next(self.llm.parameters()).device) for k, v in batch.items()}
        out = self.llm(self.llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True)
        assert out.hidden_states is not None
        return out.hidden_states[-1], batch["attention_mask"]

    def encode_negative(self, negative_prompt: str = EMPTY_CAPTION) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional branch of guidance: the empty caption by default."""
        return self.encode_prompts([negative_prompt])

    def drop_captions(self, prompts: list[str]) -> list[str]:
        if not self.training or self.caption_dropout <= 0:
            return list(prompts)
        drop = torch.rand(len(prompts)) < self.caption_dropout
        return [EMPTY_CAPTION if d else p for p, d in zip(prompts, drop.tolist(), strict=True)]

    # -- training ----------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The paint objective on ``{"images": (B, 3, H, W) in [-1, 1], "prompts": [...]}``."""
        images, prompts = batch["images"], batch["prompts"]
        if len(prompts) != images.shape[0]:
            raise DataError(f"{images.shape[0]} images but {len(prompts)} prompts in the batch: "
                            "give one prompt per image")
        cond, mask = self.encode_prompts(self.drop_captions(prompts))
        return self.decoder.training_loss(images, cond, mask)

    # -- inference (implemented in mpm_framework.paint) ----------------------------
    def paint(self, prompts: str | list[str], **options: Any):
        """Images for each prompt: see :func:`mpm_framework.paint.sampling.paint`."""
        from ..paint.sampling import paint

        return paint(self, prompts, **options)


def _caption_dropout(config: Any) -> float:
    """``model.decoder.caption_dropout`` of the composed config; 0.1 (VisCPM)
    when there is none (a stack built by hand)."""
    try:
        return float(config.model.decoder.caption_dropout)
    except AttributeError:
        return 0.1
