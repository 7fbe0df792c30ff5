"""What every torch component shares: construction from config and named groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass
class BuildContext:
    """Facts a component may need from its neighbours when it is built. Its own
    dtype comes from its config (`dtype` field), its device is the ambient one
    (`meta` below, else the CPU; the trainer and loaders move the stack)."""

    llm_hidden_size: int | None = None  # filled before the vision side, connector and decoder are built
    vision_hidden_size: int | None = None  # the encoder's output_dim, for the connector
    meta: bool = False  # build on the meta device (planning; no memory, no weights)


class Component(nn.Module):
    """Base of every torch component.

    ``from_config`` builds the component from its config: an instance of the
    config dataclass it registered (validated and resolved by the core:
    ``OmegaConf.to_object`` of the checked node), or the core's ``_NamedOnly``
    (just ``name``) when it registered none;
    ``trainable_groups`` names parameter groups that stage freeze sets refer to
    as ``<component>.<group>`` (e.g. ``vision.patch_embed``). Each group maps to
    parameter-name prefixes relative to the component; "" means everything.

    The core reaches for no member that is not declared on a contract class
    (``tests/contracts/test_no_undeclared_members.py`` checks the stage, trainer
    and stack code); every optional member has its default there.
    """

    @classmethod
    def from_config(cls, config: Any, context: BuildContext) -> Component:
        """Build from ``config`` (the registered dataclass's instance: read its
        fields as attributes) and the neighbours' facts in ``context``."""
        raise NotImplementedError

    def trainable_groups(self) -> dict[str, list[str]]:
        return {}

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory; components without layers ignore it."""

    def quantize_weights(self, mode: str) -> int:
        """Apply quantisation ``mode`` (``"int8"``; see :data:`mpm_framework.config.choices.Quantize`)
        in place to weights already loaded, returning how many layers changed.

        Loading a trained run at ``model.<component>.quantize=int8``
        (:func:`mpm_framework.composition.load_stack`) builds the component in
        float, loads the trained weights, then calls this. A component that
        quantises at build time (``quantize`` in its config) implements it and
        has its ``from_config`` call the same code. ``"none"`` changes nothing;
        the default refuses anything else."""
        from ..quantize import check_quantize

        if check_quantize(mode) == "none":
            return 0
        from ..errors import ConfigError

        raise ConfigError(f"{type(self).__name__} does not support quantisation ({mode}): "
                          "leave its quantize at none (or choose a dtype instead)")
