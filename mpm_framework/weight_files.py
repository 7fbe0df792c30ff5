"""Reading weight files into a model without a second copy in memory.

The usual ``model = Model(); model.load_state_dict(load(file))`` holds the
weights twice: once as the randomly initialised parameters, once as the loaded
dict (and the copy between them reads every page of the file). Plugins instead
build their module on the meta device and hand it the file's tensors with
``load_state_dict(..., assign=True)`` (:func:`assign_weights`):

- at the file's own dtype, the tensors are views of the memory-mapped file
  (safetensors' ``load_file``): nothing is read until used, pages are shared
  with the page cache and dropped under memory pressure;
- at another dtype, :func:`read_safetensors` reads one tensor at a time with
  plain file reads and converts it, so the peak is the converted weights plus
  the largest single tensor (a mapped file would stay resident until closed).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from .errors import MPMError

_CHUNK = 16 * 2**20  # bytes read at a time when converting

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def _header(f) -> tuple[dict, int]:
    (size,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header, 8 + size


def read_safetensors(path: str | Path, dtype: torch.dtype | None = None,
                     keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; floating-point ones as ``dtype``.

    With ``dtype`` None (or equal to every stored floating dtype) the result is
    memory-mapped (no copy). Otherwise each tensor is read and converted on its
    own; integer tensors keep their dtype. ``keys`` limits what is read.
    """
    from safetensors.torch import load_file

    path = Path(path)
    with open(path, "rb") as f:
        header, start = _header(f)
        wanted = set(header) if keys is None else set(keys) & set(header)
        stored = {header[k]["dtype"] for k in wanted}
        floating = {s for s in stored if s in _DTYPES and _DTYPES[s].is_floating_point}
        if dtype is None or {_DTYPES[s] for s in floating} <= {dtype}:
            if keys is None:
                return load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return {k: handle.get_tensor(k) for k in wanted}
        out: dict[str, torch.Tensor] = {}
        # One reused read buffer of at most _CHUNK bytes: each tensor is read and
        # converted piece by piece straight into its final storage. (A fresh buffer
        # per tensor leaves freed holes between the kept tensors, as glibc raises
        # its mmap threshold after the first free: +0.3x on a 500 MB fp32 -> bf16 load.)
        sizes = [header[k]["data_offsets"][1] - header[k]["data_offsets"][0] for k in wanted]
        scratch = torch.empty(min(max(sizes, default=0), _CHUNK), dtype=torch.uint8)
        for key in sorted(wanted, key=lambda k: header[k]["data_offsets"][0]):  # read in file order
            info = header[key]
            source = _DTYPES.get(info["dtype"])
            if source is None:
                raise MPMError(f"{path}: tensor '{key}' has an unsupported dtype {info['dtype']}")
            begin, end = info["data_offsets"]
            target = dtype if source.is_floating_point else source
            flat = torch.empty(math.prod(info["shape"]), dtype=target)
            step = max(1, _CHUNK // source.itemsize) * source.itemsize
            f.seek(start + begin)
            for offset in range(0, end - begin, step):
                n = min(step, end - begin - offset)
                raw = scratch[:n]
                if f.readinto(memoryview(raw.numpy())) != n:
                    raise MPMError(f"{path} is truncated (tensor '{key}')")
                first = offset // source.itemsize
                flat[first:first + n // source.itemsize].copy_(raw.view(source))
            out[key] = flat.reshape(info["shape"])
        return out


def meta_tensors(module: nn.Module) -> list[str]:
    """Names of parameters and buffers still on the meta device (never loaded)."""
    named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
    return [n for n, t in named if t.is_meta]


def assign_weights(module: nn.Module, state: dict[str, torch.Tensor], strict: bool = True):
    """``load_state_dict(state, strict, assign=True)`` for a module built on the
    meta device; returns its result. Tied weights (a module's ``tie_weights``)
    are re-tied after the assignment replaced the shared parameter."""
    result = module.load_state_dict(state, strict=strict, assign=True)
    tie = getattr(module, "tie_weights", None)
    if callable(tie):
        tie()
    return result


def materialize_rest(module: nn.Module, device: str | torch.device = "cpu") -> list[str]:
    """Give every submodule that still holds meta tensors real storage and its
    own initialisation (``reset_parameters``); returns the names it initialised.
    Used for the few tensors a checkpoint does not carry (new bridge layers)."""
    names = meta_tensors(module)
    for sub in module.modules():
        own = [*sub.parameters(recurse=False), *sub.buffers(recurse=False)]
        if any(t.is_meta for t in own):
            sub.to_empty(device=device, recurse=False)
            reset = getattr(sub, "reset_parameters", None)
            # A container's reset_parameters would re-initialise its loaded children:
            # only leaves (Linear, LayerNorm, ...) reset; a container's own tensors start at zero.
            if callable(reset) and not any(True for _ in sub.children()):
                reset()
            else:
                with torch.no_grad():
                    for t in own:
                        t.zero_()
    return names


def safetensors_files(folder: str | Path, stem: str = "model", variant: str | None = None) -> list[Path]:
    """The safetensors file(s) of a Hugging Face style folder: ``STEM[.VARIANT].safetensors``
    or the shards its ``.index.json`` lists; empty when there are none."""
    folder = Path(folder)
    name = f"{stem}.{variant}.safetensors" if variant else f"{stem}.safetensors"
    if (folder / name).is_file():
        return [folder / name]
    index = folder / f"{name}.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / s for s in shards]
    return []


def load_files_into(module: nn.Module, files: list[Path], dtype: torch.dtype | None = None,
                    prefixes: tuple[str, ...] = ()) -> list[str]:
    """Assign the tensors of ``files`` that ``module`` names (built with its
    parameters on the meta device, e.g. under ``accelerate.init_empty_weights``)
    as ``dtype``; returns the names still on the meta device (the checkpoint
    lacked them). A file key ``PREFIX + name`` (one of ``prefixes``) counts as
    ``name``. Tensors the module does not name are not read."""
    own = set(module.state_dict().keys())
    state: dict[str, torch.Tensor] = {}
    for file in files:
        with open(file, "rb") as f:
            stored = set(_header(f)[0])
        names: dict[str, str] = {}
        for key in own:
            found = next((p + key for p in ("", *prefixes) if p + key in stored), None)
            if found is not None:
                names[found] = key
        for key, tensor in read_safetensors(file, dtype, keys=names).items():
            state[names[key]] = tensor
    assign_weights(module, state, strict=False)
    return meta_tensors(module)
