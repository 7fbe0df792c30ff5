"""Prompt data shared by every pivot LLM (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IMAGE_MARKER = "<image>"
IGNORE_INDEX = -100


def next_token_targets(labels: Any) -> Any:
    """The labels the prediction at positions ``0 .. T-2`` is scored against.

    ``labels`` are aligned with ``input_ids`` (see :class:`PromptEncoding`), so
    the loss compares ``logits[t - 1]`` with ``labels[t]``: the targets are the
    labels from position 1 on. This is the one place the shift is written; it
    takes a list (one encoding) or a (B, T) tensor (a batch)."""
    return labels[1:] if isinstance(labels, list) else labels[:, 1:]


def predicting_positions(states: Any) -> Any:
    """The (B, T, ...) logits/hidden states that predict :func:`next_token_targets`
    (every position but the last)."""
    return states[:, :-1]


@dataclass
class Turn:
    """One conversation turn. ``content`` may hold :data:`IMAGE_MARKER` where the
    image features go (at most once per conversation in the built-in stages)."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class PromptEncoding:
    """A tokenised prompt, before batching.

    ``labels`` is aligned with ``input_ids`` (the Hugging Face convention: the
    loss at position t compares ``logits[t - 1]`` with ``labels[t]``) and holds
    IGNORE_INDEX everywhere except on the tokens the model must produce
    (assistant answers and their end token). ``image_mask`` is True on the
    placeholder slots that image features overwrite. ``extra`` carries per-token
    or per-sample fields that only the LLM itself understands (CPM-Bee's segment
    ids, sub ids, ...); its ``collate`` batches them.

    The core never cuts an encoding whose ``extra`` is non-empty: it cannot know
    how to cut the model's own fields consistently, so a too-long sample with
    ``extra`` is skipped (``too_long``) instead of truncated. An LLM that wants
    truncation keeps ``extra`` empty.
    """

    input_ids: list[int]
    labels: list[int]
    image_mask: list[bool]
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if len(self.labels) != n or len(self.image_mask) != n:
            raise ValueError(
                f"PromptEncoding fields disagree in length: input_ids={n}, "
                f"labels={len(self.labels)}, image_mask={len(self.image_mask)}"
            )

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_image_slots(self) -> int:
        return sum(self.image_mask)
