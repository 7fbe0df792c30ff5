"""Choice types for config dataclasses: a field annotated ``Literal[...]`` is
checked when the config is resolved (``mpm show-config``), and a value outside
it fails naming the allowed values and the nearest one.

Plugins annotate their fields with these so the choices are written once::

    from mpm_framework.config.choices import Dtype

    @dataclass
    class MyEncoderConfig:
        dtype: Dtype = "fp32"

and turn the name into a torch dtype with :func:`torch_dtype` (the one table of
dtype names; this module stays torch-free until that function is called).
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import torch

Dtype = Literal["fp32", "bf16", "fp16"]
"""Parameter dtype of a component (``torch.float32`` / ``bfloat16`` / ``float16``)."""

Quantize = Literal["none", "int8"]
"""Weight quantisation for inference (see :mod:`mpm_framework.quantize`)."""

DTYPES: tuple[str, ...] = typing.get_args(Dtype)
"""The dtype names, in the order of :data:`Dtype` (``run.precision`` takes the same)."""

# torch attribute of each name: resolved by torch_dtype, so importing this module imports no torch
_TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def torch_dtype(name: str, field: str = "dtype") -> torch.dtype:
    """``"bf16"`` -> ``torch.bfloat16``. A name outside :data:`DTYPES` is a
    :class:`ConfigError` naming ``field``, the allowed names and the nearest."""
    if name not in _TORCH_NAMES:
        raise ConfigError(f"invalid value {name!r} for '{field}'.{did_you_mean(str(name), DTYPES)} "
                          f"Allowed: {', '.join(DTYPES)}")
    import torch

    return getattr(torch, _TORCH_NAMES[name])


def dtype_name(dtype: torch.dtype) -> str | None:
    """``torch.bfloat16`` -> ``"bf16"``; None for a dtype without a name here (float64, ints)."""
    return next((name for name, attr in _TORCH_NAMES.items() if str(dtype) == f"torch.{attr}"), None)


__all__ = ["DTYPES", "Dtype", "Quantize", "dtype_name", "torch_dtype"]
