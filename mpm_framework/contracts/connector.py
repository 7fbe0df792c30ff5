"""The connector contract: vision features -> LLM input embeddings."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base import Component


class Connector(Component):
    """Maps encoder tokens to LLM-width tokens for the image slots."""

    @abstractmethod
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, N, vision_dim) -> (B, M, llm_dim)."""

    def num_output_tokens(self, num_input_tokens: int) -> int:
        """Image slots per image given the encoder's ``num_output_tokens``
        (unchanged by default; a resampler returns its query count)."""
        return num_input_tokens
