"""PaintStack: pivot LLM (frozen) -> adapter -> image decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts.decoder import ImageDecoder
from ..contracts.language import LanguagePack
from ..contracts.llm import PivotLLM
from .trainable import apply_freeze_sets


class PaintStack(nn.Module):
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

    def components(self) -> dict[str, nn.Module]:
        return {"llm": self.llm, "decoder": self.decoder}

    def set_trainable(self, trainable: list[str], frozen: list[str] = ()) -> dict[str, tuple[int, int]]:
        return apply_freeze_sets(self.components(), list(trainable), list(frozen))

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-layer LLM hidden states of each prompt and their mask."""
        encodings = [self.llm.encode_text(p) for p in prompts]
        batch = self.llm.collate(encodings, padding_side="right")
        batch = {k: v.to(next(self.llm.parameters()).device) for k, v in batch.items()}
        out = self.llm(self.llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True)
        assert out.hidden_states is not None
        return out.hidden_states[-1], batch["attention_mask"]

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        cond, mask = self.encode_prompts(batch["prompts"])
        return self.decoder.training_loss(batch["images"], cond, mask)
