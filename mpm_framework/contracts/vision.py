"""The vision encoder contract."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base import Component


class VisionEncoder(Component):
    """Images -> a sequence of feature tokens.

    ``output_dim`` is the width of what ``forward`` returns; an encoder that owns
    its bridge to the LLM (BEiT-3 with query tokens and a mapping MLP) returns
    LLM-width tokens and sets ``owns_bridge`` so the stack can use the
    ``identity`` connector.
    """

    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    hidden_size: int
    num_output_tokens: int
    owns_bridge: bool = False

    @property
    def output_dim(self) -> int:
        return self.hidden_size

    @abstractmethod
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, N, output_dim)."""

    def image_transform(self, train: bool = False):
        """A callable PIL.Image -> (3, H, W) float tensor for this encoder."""
        from ..imaging import ImageTransform

        return ImageTransform(self.image_size, self.image_mean, self.image_std, train=train)
