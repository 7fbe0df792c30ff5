"""Activation memory of one training step.

Backward needs working memory on top of what forward saved: the gradient of
the largest saved tensor and one temporary of its size (the logits' softmax,
typically), so the plan adds twice the largest saved tensor.

Two methods, and the plan says which it used:
- ``traced``: run a real forward on this CPU and add up every tensor autograd
  saves for backward (exact for this implementation; used when the model fits
  comfortably in host memory);
- ``formula``: the transformer estimate of Korthikanti et al. (2022) with
  memory-efficient attention: 34·s·b·h bytes per layer in 16-bit (half of it
  saved in fp32 doubles), or 2·s·b·h per layer with gradient checkpointing plus
  one layer being recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch
from torch import nn


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def traced_saved_bytes(
    modules: dict[str, nn.Module], run: Callable[[], torch.Tensor]
) -> tuple[dict[str, int], torch.Tensor]:
    """Bytes saved for backward while ``run()`` executes, per named module, plus
    the size of the largest saved tensor under the key ``"largest"``.

    Parameters (and views of them) are excluded: they are counted as weights.
    Each storage is counted once, in the module that first saved it."""
    param_keys = {_storage_key(p) for m in modules.values() for p in m.parameters()}
    owner: dict[int, tuple[str, int]] = {}
    stack: list[str] = []
    handles = []
    def enter(name: str):
        return lambda *_: stack.append(name)  # list.append returns None: output untouched

    def leave(*_) -> None:
        stack.pop()

    for name, module in modules.items():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))

    def record_saved(t: torch.Tensor) -> torch.Tensor:  # autograd's "pack hook": sees every tensor saved for backward
        key = _storage_key(t)
        if key not in param_keys:
            size = t.untyped_storage().nbytes()
            prev = owner.get(key)
            owner[key] = (prev[0] if prev else (stack[-1] if stack else "other"), max(size, prev[1] if prev else 0))
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(record_saved, lambda t: t):
            loss = run()
    finally:
        for h in handles:
            h.remove()
    per_module: dict[str, int] = defaultdict(int)
    for name, size in owner.values():
        per_module[name] += size
    result = dict(per_module)
    result["largest"] = max((size for _, size in owner.values()), default=0)
    return result, loss


def formula_bytes(
    tokens: int, hidden: int, layers: int, bytes_per_value: int, checkpointing: bool
) -> int:
    """Transformer activations (Korthikanti et al. 2022, flash-style attention)."""
    scale = bytes_per_value / 2  # the formula counts 16-bit values
    if checkpointing:
        return int((2 * tokens * hidden * layers + 34 * tokens * hidden) * scale)
    return int(34 * tokens * hidden * layers * scale)
