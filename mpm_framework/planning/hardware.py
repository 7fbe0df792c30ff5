"""Hardware and precision facts the planner works from (torch-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

_SIZE = re.compile(r"^\s*([\d.]+)\s*([kmgt]i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}

GiB = 2**30


def parse_size(text: str) -> int:
    """``"80GB"`` / ``"80GiB"`` / ``"24g"`` -> bytes. GB is read as GiB, as GPU
    vendors mean it (an "80 GB" card has 80 GiB)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"cannot read memory size {text!r}; write e.g. 80GB or 24GiB")
    unit = (m.group(2) or "").lower().rstrip("b")
    unit = unit + "i" if unit and not unit.endswith("i") else unit
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class Hardware:
    gpus_per_node: int = 1
    nodes: int = 1
    gpu_memory: int = 80 * GiB
    zero_stage: int = 2  # 0 = plain DDP
    offload: bool = False  # ZeRO-Offload: optimizer state (and ZeRO-3 params) in CPU memory
    headroom: float = 0.9  # share of the card usable by tensors (context, fragmentation)

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter for weights, gradients and Adam state."""

    name: str
    weight: int
    grad: int
    optimizer: int  # Adam m + v (+ fp32 master weights under mixed precision)

    @classmethod
    def from_name(cls, name: str) -> Precision:
        if name == "fp32":
            return cls("fp32", 4, 4, 8)
        if name in ("bf16", "fp16"):
            return cls(name, 2, 2, 12)
        raise ConfigError(f"unknown precision {name!r}; use fp32, bf16 or fp16")
