"""MPM: multilingual multimodal models by pivoting through a multilingual LLM.

Importing this package is cheap (no torch); :func:`compose` builds stacks.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "compose", "hookimpl"]

from .hookspecs import hookimpl


def compose(*args: Any, **kwargs: Any):
    from .composition import compose as _compose

    return _compose(*args, **kwargs)


compose.__doc__ = "Build a stack from component names; see :func:`mpm_framework.composition.compose`."
