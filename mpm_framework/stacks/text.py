"""TextStack: a bare pivot LLM dressed as a stack, for text-only stages."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts.llm import LMOutput, PivotLLM
from ..contracts.prompt import PromptEncoding, Turn
from .base import Stack


class TextStack(Stack):
    """The pivot LLM alone (``pretrain``, the toy world's text stages)."""

    kind = "text"

    def __init__(self, llm: PivotLLM, languages: dict[str, Any] | None = None, config: Any = None) -> None:
        super().__init__()
        self.llm, self.languages, self.config = llm, languages or {}, config

    def components(self) -> dict[str, nn.Module]:
        return {"llm": self.llm}

    def encode_conversation(self, turns: list[Turn], add_generation_prompt: bool = False) -> PromptEncoding:
        return self.llm.format_prompt(turns, 0, add_generation_prompt)

    def forward(self, batch: dict[str, torch.Tensor]) -> LMOutput:
        embeds = self.llm.embed_tokens(batch["input_ids"])
        return self.llm(embeds, batch, labels=batch.get("labels"))
