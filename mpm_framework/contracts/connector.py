"""The connector contract: vision features -> LLM input embeddings."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base import Component


class Connector(Component):
    @abstractmethod
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, N, vision_dim) -> (B, M, llm_dim)."""

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens
