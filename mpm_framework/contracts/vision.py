"""The vision encoder contract."""

from __future__ import annotations

from abc import abstractmethod

import torch

from .base import Component

PATCH_EMBED_GROUP = "patch_embed"  # the trainable group instruct keeps frozen, when an encoder has it
BRIDGE_GROUP_NAMES = ("queries", "query", "query_tokens", "mapping", "bridge")  # bridge_groups' default


class VisionEncoder(Component):
    """Images -> a sequence of feature tokens.

    ``output_dim`` is the width of what ``forward`` returns; an encoder that owns
    its bridge to the LLM (BEiT-3 with query tokens and a mapping MLP) returns
    LLM-width tokens and sets ``owns_bridge`` so the stack can use the
    ``identity`` connector.

    Members the core reads (all have defaults here):

    * ``num_output_tokens``: tokens ``forward`` returns per image (the image slots
      a connector maps from);
    * ``num_input_tokens``: tokens the encoder's layers run over per image (the
      memory planner's activation count); ``num_output_tokens`` unless the
      encoder resamples (query tokens);
    * ``owns_bridge`` and :meth:`bridge_groups`: the parameter groups the
      ``align``/``instruct`` stages train as the encoder's own bridge;
    * the group :data:`PATCH_EMBED_GROUP` in :meth:`trainable_groups`: the
      ``instruct`` stage keeps it frozen (LLaVA's and VisCPM's policy).

    The connector a recipe pairs with an encoder by default is not a member: it
    is the registration's ``default_connector`` (``register(..., default_connector=
    "identity")``), read before the encoder is built.
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

    @property
    def num_input_tokens(self) -> int:
        """Tokens per image inside the encoder (planning); the output count by default."""
        return self.__dict__.get("_num_input_tokens") or self.num_output_tokens

    @num_input_tokens.setter
    def num_input_tokens(self, value: int) -> None:  # an encoder may also just assign it
        self.__dict__["_num_input_tokens"] = int(value)

    def bridge_groups(self) -> list[str]:
        """Names of :meth:`trainable_groups` that form the encoder's own bridge to
        the LLM, trained by ``align`` and ``instruct`` when ``owns_bridge`` is set.
        By default the groups named in :data:`BRIDGE_GROUP_NAMES` that exist."""
        groups = self.trainable_groups()
        return [g for g in groups if g in BRIDGE_GROUP_NAMES]

    @abstractmethod
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, N, output_dim)."""

    def image_transform(self, train: bool = False):
        """A callable PIL.Image -> (3, H, W) float tensor for this encoder."""
        from ..imaging import ImageTransform

        return ImageTransform(self.image_size, self.image_mean, self.image_std, train=train)
