"""Prompt data shared by every pivot LLM (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IMAGE_MARKER = "<image>"
IGNORE_INDEX = -100


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
