"""The pivot LLM contract."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from .base import Component
from .prompt import PromptEncoding, Turn
from .renamed import warn_renamed

_PACK_WHY = "sequence packing; a 'pack' is a language pack"


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

    # -- optional members the core reads (the defaults are what it assumes) ----
    #: Ids besides ``eos_token_id`` that end an answer (Llama 3's ``<|eot_id|>``).
    stop_token_ids: Sequence[int] = ()
    #: Decoding defaults of the model's reference implementation, as
    #: ``GenerationConfig`` field names (VisCPM: beam 3, repetition penalty 1.1);
    #: callers that take model defaults apply them under the user's own options.
    #: Read-only: a plugin assigns its own dict, never mutates this one.
    generation_defaults: Mapping[str, Any] = MappingProxyType({})
    #: The longest prompt + answer the model can attend over; None: the
    #: generation loop reads ``max_position_embeddings`` of a transformers config.
    max_context_length: int | None = None
    #: True when :meth:`pack_sequences` keeps packed samples apart (``data.packing`` needs it).
    supports_packing: bool = False

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

    def encode_paint_prompt(self, text: str) -> PromptEncoding:
        """A paint prompt as the model reads it (the paint stack takes its last
        hidden states); plain text by default. CPM-Bee wraps it in VisCPM-Paint's
        ``{"caption", "objects"}`` form."""
        return self.encode_text(text)

    def pack_sequences(self, encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
        """Sequence packing: merge short encodings into rows of at most
        ``max_length`` tokens whose samples cannot attend to each other.

        Order is kept: samples appear in the rows in the order given (the batch's
        images are stacked in sample order and fill the image slots in
        row-major order); :func:`mpm_framework.training.packing.pack_in_order`
        does this for encodings without ``extra``. Models without packing
        support return the input unchanged (``supports_packing`` False)."""
        if type(self).pack is not PivotLLM.pack:  # a plugin written before the rename
            warn_renamed(type(self), "pack", "pack_sequences", _PACK_WHY, overridden=True)
            return self.pack(encodings, max_length)
        return encodings

    def pack(self, encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
        """Deprecated name of :meth:`pack_sequences` ("pack" is a language pack)."""
        warn_renamed(type(self), "pack", "pack_sequences", _PACK_WHY)
        if type(self).pack_sequences is not PivotLLM.pack_sequences:
            return self.pack_sequences(encodings, max_length)
        return encodings  # not pack_sequences: an old override may call super().pack

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

    def extend_state(self, token_ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any] | None:
        """Feed several tokens per row (B, T) after those ``state`` has seen;
        return (logits of the next token (B, V), new state) as ``prefill`` over
        all the tokens would, leaving ``state`` usable. A chat keeps its
        conversation's state and feeds only each new user turn through it.
        Optional: the default returns None ("not supported") and the chat then
        prefills the whole conversation again."""
        return None

    def merge_decode_states(self, states: Sequence[Any]) -> Any | None:
        """One decode state whose rows are those of ``states``, in order.

        Each state comes from this model's ``prefill``/``decode``/``reorder_state``,
        possibly over different numbers of tokens; decoding the merged state must
        give every row the next-token logits it would get in its own state. The
        continuous-batching server (``mpm serve``) uses it to add newly prefilled
        requests to the running batch without prefilling the running rows again.
        Optional: the default returns None ("not supported") and the server then
        prefills the running rows again together with the new ones."""
        return None

    def synthetic_batch(
        self, batch_size: int, seq_len: int, num_image_tokens: int = 0, answer_len: int | None = None
    ) -> dict[str, torch.Tensor]:
        """A batch of the given shape with no real text (memory planning on the
        meta device, benchmarks): ``num_image_tokens`` image slots after the
        first token, labels on the last ``answer_len`` tokens. Models whose
        ``collate`` needs fields from ``extra`` override this."""
        from .prompt import IGNORE_INDEX

        answer_len = seq_len // 4 if answer_len is None else answer_len
        filler = 1 if self.pad_token_id != 1 else 2
        ids = [filler] * seq_len
        labels = [IGNORE_INDEX] * (seq_len - answer_len) + ids[seq_len - answer_len:]
        image_mask = [False] + [True] * num_image_tokens + [False] * (seq_len - 1 - num_image_tokens)
        encoding = PromptEncoding(ids, labels, image_mask)
        return self.collate([encoding] * batch_size)

    # -- io --------------------------------------------------------------------
    def save_pretrained(self, path: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot save a full checkpoint")
