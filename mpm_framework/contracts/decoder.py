"""The image decoder contract (text -> image through the pivot LLM)."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base import Component

#: Groups the paint stack's messages name; a decoder that has them maps them in
#: :meth:`~.base.Component.trainable_groups` (``decoder.adapter`` etc. in freeze sets).
DECODER_GROUPS = ("adapter", "cross_attention", "unet")


class ImageDecoder(Component):
    """A denoiser conditioned on LLM hidden states through its own adapter."""

    image_size: int

    def default_trainable(self) -> list[str]:
        """``decoder.<group>`` specs the ``paint`` stage trains when the recipe
        names none; the whole decoder by default."""
        return ["decoder"]

    @abstractmethod
    def training_loss(
        self, images: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor
    ) -> torch.Tensor:
        """Denoising loss for (B, 3, H, W) images in [-1, 1] given (B, T, D_llm)
        hidden states and their (B, T) mask."""

    @abstractmethod
    def sample(
        self,
        cond: torch.Tensor,
        cond_mask: torch.Tensor,
        uncond: torch.Tensor,
        uncond_mask: torch.Tensor,
        guidance_scale: float = 7.5,
        num_steps: int = 50,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] with classifier-free guidance."""
