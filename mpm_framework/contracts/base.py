"""What every torch component shares: construction from config and named groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class BuildContext:
    """Facts a component may need from its neighbours when it is built."""

    llm_hidden_size: int | None = None
    vision_hidden_size: int | None = None
    vision_num_tokens: int | None = None
    device: str | torch.device = "cpu"
    dtype: torch.dtype = torch.float32
    meta: bool = False  # build on the meta device (planning; no memory, no weights)


class Component(nn.Module):
    """Base of every torch component.

    ``from_config`` builds the component from its (validated, omegaconf) config;
    ``trainable_groups`` names parameter groups that stage freeze sets refer to
    as ``<component>.<group>`` (e.g. ``vision.patch_embed``). Each group maps to
    parameter-name prefixes relative to the component; "" means everything.

    The core reaches for no member that is not declared on a contract class
    (``tests/contracts/test_no_undeclared_members.py`` checks the stage, trainer
    and stack code); every optional member has its default there.
    """

    @classmethod
    def from_config(cls, config: Any, context: BuildContext) -> Component:
        raise NotImplementedError

    def trainable_groups(self) -> dict[str, list[str]]:
        return {}

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory; components without layers ignore it."""
