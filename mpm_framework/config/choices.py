"""Choice types for config dataclasses: a field annotated ``Literal[...]`` is
checked when the config is resolved (``mpm show-config``), and a value outside
it fails naming the allowed values and the nearest one.

Plugins annotate their fields with these so the choices are written once::

    from mpm_framework.config.choices import Dtype

    @dataclass
    class MyEncoderConfig:
        dtype: Dtype = "fp32"
"""

from __future__ import annotations

from typing import Literal

Dtype = Literal["fp32", "bf16", "fp16"]
"""Parameter dtype of a component (``torch.float32`` / ``bfloat16`` / ``float16``)."""

Quantize = Literal["none", "int8"]
"""Weight quantisation for inference (see :mod:`mpm_framework.quantize`)."""

__all__ = ["Dtype", "Quantize"]
