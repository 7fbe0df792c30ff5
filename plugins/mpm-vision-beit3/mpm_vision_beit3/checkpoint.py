"""Reading and writing BEiT-3 checkpoints in their published layouts.

- Microsoft (unilm/beit3 release): a torch pickle ``{"model": {"beit3.…": …}}``,
  sometimes with task heads beside ``beit3.``; ``module`` instead of ``model``
  in some fine-tuned files.
- torchscale: a bare ``BEiT3`` state dict (``text_embed.…``, ``encoder.…``).
- VisCPM-Chat: one flat dict holding ``vpm.beit3.…`` (+ ``vpm.mim_head.…``),
  ``query``, ``mapping.{0,2}.…`` and the whole LLM under ``llm.``.
- mpm: this plugin's own export, a safetensors file with ``beit3.…``,
  ``query`` and ``mapping.…`` (the module's own ``state_dict`` keys).

Pickles are read with ``weights_only=True``; only ``argparse.Namespace`` (the
``args`` entry some unilm checkpoints carry) is allowed besides tensors.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mpm_framework.errors import ConfigError, MPMError, did_you_mean

FORMATS = ("auto", "microsoft", "viscpm", "mpm", "torchscale")
_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_BRIDGE_PREFIXES = ("query", "mapping.")
POSITIONS_A = "beit3.encoder.embed_positions.A.weight"


@dataclass
class LoadReport:
    """What a checkpoint load did, key by key."""

    path: str
    format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # backbone keys the file lacks
    unexpected: list[str] = field(default_factory=list)  # backbone keys the model lacks
    initialised: list[str] = field(default_factory=list)  # bridge keys the format never carries
    ignored: list[str] = field(default_factory=list)  # heads, the LLM, MIM head: not ours
    interpolated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        lines = [f"beit3 checkpoint {self.path} ({self.format}): {len(self.loaded)} tensors loaded"]
        for label, keys in (
            ("missing (left at their initial values)", self.missing),
            ("unexpected (not in the model)", self.unexpected),
            ("initialised fresh (not in this format)", self.initialised),
            ("interpolated", self.interpolated),
        ):
            if keys:
                lines.append(f"  {label}: {len(keys)}: {_short(keys)}")
        if self.ignored:
            groups = sorted({k.split(".")[0] for k in self.ignored})
            lines.append(f"  ignored (other parts of the file): {len(self.ignored)} under {', '.join(groups)}")
        return "\n".join(lines)

    __str__ = summary


def _short(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "")


def find_checkpoint_file(path: str | Path) -> Path:
    """``path`` itself, or the single checkpoint file inside a directory."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        candidates = sorted(c for c in p.iterdir() if c.suffix in _SUFFIXES and c.is_file())
        preferred = [c for c in candidates if c.suffix == ".safetensors"] or candidates
        if len(preferred) == 1:
            return preferred[0]
        if not preferred:
            raise ConfigError(f"no BEiT-3 checkpoint ({', '.join(_SUFFIXES)}) in directory {p}")
        raise ConfigError(
            f"several checkpoint files in {p}: {', '.join(c.name for c in preferred)}; set the path to one"
        )
    raise ConfigError(f"BEiT-3 checkpoint not found: {p}")


def read_state_dict(path: str | Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a (weights-only) torch pickle; floating
    ones as ``dtype`` when given (safetensors are then read tensor by tensor)."""
    file = find_checkpoint_file(path)
    if file.suffix == ".safetensors":
        from mpm_framework.weight_files import read_safetensors

        return read_safetensors(file, dtype)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            try:  # mmap avoids reading the LLM half of a VisCPM file into memory
                obj = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MPMError(
            f"cannot read {file} as a weights-only torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Only tensors are loaded, never "
            "arbitrary pickled objects; convert the file to safetensors if it holds other objects."
        ) from None
    tensors = unwrap(obj, file)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors


def unwrap(obj: object, source: object = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor dict inside unilm's ``{"model": …}`` / ``{"module": …}`` wrappers."""
    if isinstance(obj, dict):
        for key in ("model", "module", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise MPMError(f"{source} does not hold a state dict (got {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def detect_format(keys: list[str] | set[str]) -> str:
    keys = set(keys)
    if any(k.startswith("vpm.beit3.") for k in keys):
        return "viscpm"
    if any(k.startswith("beit3.") for k in keys):
        return "mpm" if any(k == "query" or k.startswith("mapping.") for k in keys) else "microsoft"
    if any(k.startswith(("encoder.layers.", "text_embed.", "vision_embed.")) for k in keys):
        return "torchscale"
    sample = ", ".join(sorted(keys)[:5])
    raise MPMError(
        f"not a BEiT-3 checkpoint: no 'beit3.', 'vpm.beit3.' or 'encoder.layers.' keys (first keys: {sample})"
    )


def to_native(state: dict[str, torch.Tensor], fmt: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keys renamed to the module's own; returns (native dict, ignored keys)."""
    native: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if fmt == "viscpm":
            if key.startswith("vpm.beit3."):
                native[key[len("vpm."):]] = value
            elif key == "query" or key.startswith("mapping."):
                native[key] = value
            else:
                ignored.append(key)  # llm.*, vpm.mim_head.*
        elif fmt == "torchscale":
            if key.startswith(("text_embed.", "vision_embed.", "encoder.")):
                native["beit3." + key] = value
            else:
                ignored.append(key)
        elif key.startswith("beit3.") or (fmt == "mpm" and key.startswith(_BRIDGE_PREFIXES)):
            native[key] = value
        else:
            ignored.append(key)  # task heads of fine-tuned Microsoft checkpoints
    return native, ignored


def interpolate_vision_positions(table: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Resize the vision position table to another patch grid (bicubic, as
    unilm/VisCPM do); the 2 offset rows and the CLS row are kept."""
    extra = 3  # 2 offset rows + CLS
    old = int(math.isqrt(table.shape[0] - extra))
    new = int(math.isqrt(num_patches))
    if old * old != table.shape[0] - extra or new * new != num_patches:
        raise MPMError(f"cannot interpolate a {table.shape[0]}-row position table to {num_patches} patches")
    grid = table[extra:].reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(new * new, -1).to(table.dtype)
    return torch.cat([table[:extra], grid], dim=0)


def load_into(
    model: nn.Module, path: str | Path, fmt: str = "auto", strict: bool = True,
    dtype: torch.dtype | None = None,
) -> LoadReport:
    """Load a checkpoint into a :class:`~mpm_vision_beit3.encoder.Beit3Encoder`.

    Shape mismatches are errors that name the key (a vision position table is
    interpolated instead). With ``strict`` any missing or unexpected backbone key
    is an error; bridge keys a format does not carry are reported, not errors.
    A model built on the meta device receives the file's tensors themselves
    (``assign``: memory-mapped, or converted to ``dtype`` one at a time), so the
    weights are in memory once; what the file lacks is initialised afterwards."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown checkpoint_format '{fmt}'.{did_you_mean(fmt, FORMATS)} Formats: {', '.join(FORMATS)}")
    file = find_checkpoint_file(path)
    state = read_state_dict(file, dtype)
    detected = detect_format(state.keys())
    fmt = detected if fmt == "auto" else fmt
    native, ignored = to_native(state, fmt)
    report = LoadReport(str(file), fmt, ignored=sorted(ignored))

    own = model.state_dict()
    _check_width(own, native, file)
    if POSITIONS_A in native and POSITIONS_A in own and native[POSITIONS_A].shape != own[POSITIONS_A].shape:
        num_patches = own[POSITIONS_A].shape[0] - 3
        native[POSITIONS_A] = interpolate_vision_positions(native[POSITIONS_A], num_patches)
        report.interpolated.append(POSITIONS_A)
    for key, value in native.items():
        if key in own and own[key].shape != value.shape:
            raise MPMError(
                f"{file}: '{key}' has shape {tuple(value.shape)} but the model expects {tuple(own[key].shape)}; "
                "check the preset and the architecture overrides"
            )
    on_meta = any(p.is_meta for p in model.parameters())
    result = model.load_state_dict(native, strict=False, assign=on_meta)
    if on_meta:
        from mpm_framework.weight_files import materialize_rest

        materialize_rest(model)  # bridge layers a format does not carry (and, not strict, the missing)
    report.loaded = sorted(k for k in native if k in own)
    for key in sorted(result.missing_keys):
        (report.initialised if key.startswith(_BRIDGE_PREFIXES) else report.missing).append(key)
    report.unexpected = sorted(result.unexpected_keys)
    if strict and not report.ok:
        raise MPMError(report.summary() + "\n(set strict: false to load anyway)")
    return report


def _check_width(own: dict[str, torch.Tensor], native: dict[str, torch.Tensor], file: Path) -> None:
    """A preset mismatch is the commonest mistake: say which preset fits."""
    key = "beit3.text_embed.weight"
    if key in own and key in native and own[key].shape[1] != native[key].shape[1]:
        from .config import PRESETS

        width = native[key].shape[1]
        fits = [name for name, arch in PRESETS.items() if arch.hidden_size == width]
        hint = f" Use preset: {fits[0]}." if fits else ""
        raise MPMError(
            f"{file} holds a BEiT-3 of width {width} but the model has width {own[key].shape[1]}.{hint}"
        )
    layers = {int(k.split(".")[3]) for k in native if k.startswith("beit3.encoder.layers.")}
    own_layers = {int(k.split(".")[3]) for k in own if k.startswith("beit3.encoder.layers.")}
    if layers and own_layers and len(layers) != len(own_layers):
        raise MPMError(f"{file} holds {len(layers)} BEiT-3 layers but the model has {len(own_layers)}")


def save_microsoft(model: nn.Module, path: str | Path) -> Path:
    """Write the backbone as Microsoft's release does: ``{"model": {"beit3.…"}}``."""
    backbone = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith("beit3.")}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": backbone}, path)
    return path


def save_viscpm(model: nn.Module, path: str | Path, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the vision part as VisCPM-Chat does (``vpm.beit3.…``, ``query``,
    ``mapping.…``); ``extra`` may add e.g. ``llm.*`` tensors."""
    out: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        out[("vpm." + k) if k.startswith("beit3.") else k] = v.detach().cpu().clone()
    out.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return path


def save_safetensors(model: nn.Module, path: str | Path) -> Path:
    """This plugin's own layout: the module's state dict as safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path
