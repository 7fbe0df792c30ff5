"""Layer placement for a GPU smaller than the model: whole blocks on the GPU
until a budget is used, the rest in CPU memory.

accelerate's ``infer_auto_device_map`` does the placement on the meta-device
stack (sizes from shapes; int8 weights counted at one byte). Blocks are never
split: the classes of modules that repeat inside a ``ModuleList`` (decoder
layers, encoder blocks) are passed as ``no_split_module_classes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config.choices import torch_dtype
from ..quantize import quantizable


@dataclass
class Placement:
    device_map: dict[str, int | str]  # module name -> 0 (the GPU) or "cpu"
    gpu_bytes: int
    cpu_bytes: int
    layers: int  # repeated blocks in the model
    gpu_layers: int  # of those, on the GPU


def block_classes(model: nn.Module) -> set[str]:
    """Class names of modules that repeat inside a ``ModuleList`` (the layers)."""
    names: set[str] = set()
    for sub in model.modules():
        if isinstance(sub, nn.ModuleList) and len(sub) > 1:
            kinds = {type(m).__name__ for m in sub}
            if len(kinds) == 1 and any(True for _ in sub[0].parameters()):
                names |= kinds
    return names


def place_layers(model: nn.Module, gpu_budget: int, dtype: str = "fp16", quantize: str = "none") -> Placement:
    """Where each block goes when at most ``gpu_budget`` bytes of weights may sit on the GPU."""
    from accelerate.utils import compute_module_sizes, infer_auto_device_map

    special = {}
    if quantize == "int8":
        special = {f"{name}.weight": torch.int8 for name, sub in model.named_modules()
                   if quantizable(sub) and getattr(sub, "weight", None) is not None}
    import logging

    # accelerate warns that device 0 does not exist: planning for a GPU this machine may not have is the point
    logging.getLogger("accelerate.utils.modeling").setLevel(logging.ERROR)
    blocks = block_classes(model)
    total = compute_module_sizes(model, dtype=torch_dtype(dtype), special_dtypes=special)[""]
    device_map = infer_auto_device_map(
        model, max_memory={0: max(int(gpu_budget), 0), "cpu": max(2 * total, 1)},
        no_split_module_classes=sorted(blocks), dtype=torch_dtype(dtype), special_dtypes=special)
    sizes = compute_module_sizes(model, dtype=torch_dtype(dtype), special_dtypes=special)
    gpu = sum(sizes[name] for name, dev in device_map.items() if dev == 0)
    layer_names = [n for n, m in model.named_modules() if type(m).__name__ in blocks]
    on_gpu = sum(1 for n in layer_names if _device_of(n, device_map) == 0)
    return Placement(dict(device_map), gpu, total - gpu, len(layer_names), on_gpu)


def _device_of(name: str, device_map: dict[str, int | str]) -> int | str | None:
    """The device of module ``name``: its own entry or its nearest mapped ancestor's."""
    while True:
        if name in device_map:
            return device_map[name]
        if not name:
            return None
        name = name.rpartition(".")[0]
