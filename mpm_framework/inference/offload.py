"""Chat on a GPU smaller than the model: ``--max-gpu-memory SIZE``.

Whole blocks go to the GPU until SIZE (less the KV cache of the context and a
working allowance) is used; the rest stays in CPU memory and runs on the GPU
too, its weights copied in for each forward pass by accelerate's hooks
(``dispatch_model``: what transformers' ``device_map="auto"`` does). The
placement is the planner's (:func:`mpm_framework.planning.offload.place_layers`,
accelerate's ``infer_auto_device_map`` with blocks kept whole), so ``mpm plan
--inference --max-gpu-memory`` shows what a chat will do; here it is computed on
the loaded stack at the dtype its weights have.

Offloaded weights sit on the meta device between calls; inputs go to the
stack's ``placed_on`` device (see :class:`~mpm_framework.stacks.base.Stack`).
On a CPU there is nothing to place: weights loaded from safetensors are
memory-mapped already, so they are read as the layers run.

Not run on a GPU here (the development machine has none): the placement, the
CUDA check and the dispatch path (with disk offload standing in for the GPU)
are tested on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, MPMError
from ..planning.offload import Placement, place_layers
from ..quantize import is_quantized


class OffloadError(MPMError):
    """Offload was asked for where it cannot run."""


def weight_budget(stack: Any, max_gpu_memory: int, context_tokens: int | None = None) -> int:
    """Bytes of weights the GPU may hold: ``max_gpu_memory`` less the KV cache of a
    full context and the logits allowance (the planner's ``mpm plan --inference`` terms)."""
    from ..planning.inference import _working, kv_bytes_per_token
    from .generation import context_window

    param = next(stack.llm.parameters())
    tokens = context_tokens or context_window(stack.llm) or 2048
    dtype = "fp32" if param.element_size() >= 4 else "bf16"
    extra = tokens * kv_bytes_per_token(stack.llm, param.element_size()) + _working(stack, dtype)
    return max(0, int(max_gpu_memory) - extra)


def plan_placement(stack: Any, max_gpu_memory: int, context_tokens: int | None = None) -> Placement:
    """Where each block of ``stack`` goes (``0``: the GPU, ``"cpu"``: offloaded),
    sized at the dtypes its weights have (works on a meta-device stack too)."""
    import warnings

    with warnings.catch_warnings():
        # accelerate warns when the buffers of offloaded layers would not fit the GPU's remaining
        # bytes: the budget already left room for the KV cache and the logits (weight_budget)
        warnings.filterwarnings("ignore", message=".*bytes of buffer for offloaded layers.*")
        # place_layers counts each tensor at min(its own size, fp32's): the weights' real bytes
        return place_layers(stack, weight_budget(stack, max_gpu_memory, context_tokens), "fp32")


def check_can_offload(device: str | None = None) -> torch.device:
    """The GPU a placed stack runs on, or :class:`OffloadError` saying why not."""
    target = torch.device(device) if device else torch.device("cuda", 0)
    if target.type != "cuda":
        raise OffloadError(f"--max-gpu-memory places layers on a GPU; --device {device} is not one "
                           "(leave --device out, or name a CUDA device such as cuda:1)")
    if not torch.cuda.is_available():
        raise OffloadError("--max-gpu-memory needs a CUDA device; on CPU weights are memory-mapped already "
                           "(leave the option out)")
    if target.index is None:
        target = torch.device("cuda", 0)
    return target


def dispatch(stack: Any, device_map: dict[str, int | str], main_device: torch.device | str,
             offload_dir: str | Path | None = None) -> Any:
    """Place ``stack``'s modules by ``device_map`` with accelerate's hooks; modules
    mapped to ``"cpu"`` (or ``"disk"``, with ``offload_dir``) run on ``main_device``."""
    from accelerate import dispatch_model

    main = torch.device(main_device)
    target: int | str = "cpu"
    if main.type == "cuda":  # the planner's GPU 0 is the chosen card
        target = main.index or 0
        device_map = {name: target if dev == 0 else dev for name, dev in device_map.items()}
    dispatch_model(stack, device_map=dict(device_map), main_device=target,
                   offload_dir=str(offload_dir) if offload_dir else None)
    stack.placed_on = main
    return stack


def offload_stack(stack: Any, max_gpu_memory: int, device: str | None = None) -> Placement:
    """Place ``stack`` across the GPU (at most ``max_gpu_memory`` bytes) and CPU
    memory. Errors: no CUDA, int8 layers (torch's dynamic int8 runs on the CPU only)."""
    main = check_can_offload(device)
    if any(is_quantized(m) for m in stack.components().values() if m is not None):
        raise ConfigError("--max-gpu-memory with quantize=int8: torch's dynamic int8 layers run on the CPU "
                          "only; offload a bf16/fp16 model (model.llm.dtype=fp16) instead")
    placement = plan_placement(stack, max_gpu_memory)
    dispatch(stack, placement.device_map, main)
    return placement


def describe(placement: Placement) -> str:
    """One line for the terminal."""
    gib = 2**30
    return (f"placed {placement.gpu_layers} of {placement.layers} blocks on the GPU "
            f"({placement.gpu_bytes / gib:.2f} GiB), {placement.cpu_bytes / gib:.2f} GiB offloaded to CPU memory")
