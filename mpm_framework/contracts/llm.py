"""The pivot LLM contract."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from .base import Component
from .prompt import PromptEncoding, Turn


@dataclass
class LMOutput:
    loss: torch.Tensor | None = None  # mean over label tokens
    logits: torch.Tensor | None = None  # None when only the loss was computed
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings + every layer
    num_label_tokens: int = 0


class PivotLLM(Component):
    """A (multilingual) language model the stacks pivot through.

    The stack never looks inside: it asks for a prompt encoding, embeds tokens,
    overwrites the image slots with vision features and calls ``forward`` (train)
    or ``prefill``/``decode`` (generation, driven by the core's decoding loop).
    """

    hidden_size: int
    vocab_size: int
    num_layers: int
    eos_token_id: int
    pad_token_id: int

    # -- text ------------------------------------------------------------------
    @abstractmethod
    def format_prompt(
        self, turns: list[Turn], num_image_tokens: int = 0, add_generation_prompt: bool = False
    ) -> PromptEncoding:
        """Encode a conversation in the model's *own* prompt format.

        Each ``<image>`` marker becomes ``num_image_tokens`` placeholder slots.
        Assistant turns are labels. With ``add_generation_prompt`` the encoding
        stops where the next assistant answer begins (for generation)."""

    @abstractmethod
    def encode_text(self, text: str) -> PromptEncoding:
        """Plain text (LM pretraining, alignment probe, paint prompts): every
        token after the first is a label."""

    @abstractmethod
    def decode_text(self, token_ids: list[int]) -> str:
        """Token ids back to text, special tokens dropped."""

    @abstractmethod
    def collate(
        self, encodings: list[PromptEncoding], padding_side: str = "right"
    ) -> dict[str, torch.Tensor]:
        """Batch encodings. Returns at least ``input_ids``, ``attention_mask``,
        ``labels`` and ``image_mask`` (B, T) plus any fields ``forward`` needs.
        Generation pads on the left."""

    def pack(self, encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
        """Merge short encodings into rows of at most ``max_length`` tokens whose
        samples cannot attend to each other. Models without packing support
        return the input unchanged (``supports_packing`` False)."""
        return encodings

    supports_packing: bool = False

    # -- compute ---------------------------------------------------------------
    @abstractmethod
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, hidden_size) input embeddings."""

    @abstractmethod
    def forward(
        self,
        inputs_embeds: torch.Tensor,
        batch: dict[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> LMOutput:
        """Full-sequence pass. With ``labels`` the LM head may run only where a
        label exists (the loss must equal the full computation's)."""

    @abstractmethod
    def prefill(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        """Run the prompt; return (logits of the next token (B, V), decode state)."""

    @abstractmethod
    def decode(self, token_ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed one token per row (B,); return (next logits (B, V), new state)."""

    @abstractmethod
    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        """Select/reorder batch rows of a decode state (beam search)."""

    # -- io --------------------------------------------------------------------
    def save_pretrained(self, path: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot save a full checkpoint")
