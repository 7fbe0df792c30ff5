"""Checkpoint files: atomic writes, safetensors tensors, JSON for the rest.

A checkpoint is a folder ``checkpoints/step-00000040/`` holding

* ``trainable.safetensors``  the trainable parameters (full, gathered) and the
  buffers of trained modules (running statistics such as a paint adapter's
  feature standardisation), without which neither resume nor reload is exact;
* ``optimizer.safetensors``  optimizer state tensors keyed ``<param name>/<key>``
  (single process and DDP; DeepSpeed keeps its own partitioned files in
  ``deepspeed/``);
* ``trainer_state.json``     step, data-stream position, bad-data ledger,
  optimizer hyper-parameters, loss scaler;
* ``rng/rank<r>.safetensors`` + ``rng/rank<r>.json``  every process's RNG states.

The folder is written as ``step-N.tmp`` and renamed when complete, so a kill at
any moment leaves either the previous checkpoint or the new one, never half.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import MPMError
from ..storage import writing

_STEP_DIR = re.compile(r"^step-(\d+)$")


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1][1] if checkpoints else None


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(path)


def _checkpoint_note(path: Path) -> str:
    """What survives a failed write: the newest complete checkpoint next to ``path``."""
    for parent in path.parents:
        if parent.name == "checkpoints":
            latest = latest_checkpoint(parent)
            if latest is not None:
                return f"The last complete checkpoint, {latest}, is intact; continue from it with --resume"
            break
    return ""


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path, "checkpoint file", _checkpoint_note(path)):
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            _remove(tmp)  # a full disk keeps no half file
            raise


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    plain = _plain(tensors)
    with writing(path, "checkpoint file", _checkpoint_note(path)):
        try:
            save_file(plain, str(tmp), metadata=metadata)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except Exception:  # OSError, or safetensors' own error type for a failed write
            _remove(tmp)
            raise


def _plain(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies without shared storage (what safetensors accepts)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def commit(tmp: Path, final: Path) -> None:
    """Make a fully written ``tmp`` folder the checkpoint ``final`` atomically."""
    with writing(final, "checkpoint", _checkpoint_note(final)):
        _commit(tmp, final)


def _commit(tmp: Path, final: Path) -> None:
    _fsync_tree(tmp)
    if final.exists():  # the same step written again (a resumed run re-saving): replace it
        trash = final.with_name(final.name + ".old")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (0: keep all)."""
    if keep_last <= 0:
        return
    for _, path in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def clean_partial(root: Path) -> None:
    """Remove folders left by a run killed while writing."""
    if root.is_dir():
        for child in root.iterdir():
            if child.name.endswith((".tmp", ".old")) and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)


# -- optimizer state ------------------------------------------------------------------


def optimizer_to_tensors(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state keyed by parameter *name* (robust to parameter order)."""
    state = optimizer.state_dict()
    index_name = {}
    i = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            index_name[i] = names[id(p)]
            i += 1
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        name = index_name[int(index)]
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value
            else:
                scalars.setdefault(name, {})[key] = value
    groups = [
        {**{k: v for k, v in g.items() if k != "params"}, "params": [index_name[int(i)] for i in g["params"]]}
        for g in state["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, names: dict[int, str],
                           tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    index_of = {}
    i = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            index_of[names[id(p)]] = i
            i += 1
    saved = [n for g in meta["param_groups"] for n in g["params"]]
    if sorted(saved) != sorted(index_of):
        missing = sorted(set(index_of) - set(saved))[:3]
        extra = sorted(set(saved) - set(index_of))[:3]
        raise MPMError(
            "the checkpoint's optimizer covers other parameters than this run trains "
            f"(missing: {missing}, unexpected: {extra}); resume with the original trainable set"
        )
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        name, _, field = key.rpartition("/")
        state.setdefault(index_of[name], {})[field] = value
    for name, values in meta.get("scalars", {}).items():
        state.setdefault(index_of[name], {}).update(values)
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index_of[n] for n in g["params"]]}
              for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- RNG ------------------------------------------------------------------------------


def save_rng(folder: Path, rank: int) -> None:
    with writing(folder, "checkpoint RNG state", _checkpoint_note(folder)):
        _save_rng(folder, rank)


def _save_rng(folder: Path, rank: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    save_file(tensors, str(folder / f"rank{rank}.safetensors"))
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    with open(folder / f"rank{rank}.json", "w", encoding="utf-8") as f:
        json.dump({"python": [version, list(internal), gauss],
                   "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}, f)


def load_rng(folder: Path, rank: int) -> bool:
    """Restore this process's RNG states; False when the checkpoint has none for it."""
    tensor_file, json_file = folder / f"rank{rank}.safetensors", folder / f"rank{rank}.json"
    if not tensor_file.is_file() or not json_file.is_file():
        return False
    tensors = load_file(str(tensor_file))
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    data = json.loads(json_file.read_text(encoding="utf-8"))
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    return True


# -- weights --------------------------------------------------------------------------


def trained_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Persistent buffers owned by modules that hold trainable parameters: the
    state training changes besides the parameters (running means, counts).
    Frozen components contribute none, so checkpoints stay small."""
    found: dict[str, torch.Tensor] = {}
    for prefix, sub in module.named_modules():
        if not any(p.requires_grad for p in sub.parameters()):
            continue
        for name, buf in sub.named_buffers(recurse=False):
            if name not in sub._non_persistent_buffers_set:
                found[f"{prefix}.{name}" if prefix else name] = buf.detach()
    return found


def load_weights_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str) -> list[str]:
    """Copy named tensors into ``module``'s parameters and persistent buffers;
    every name must exist and match in shape. Returns the names loaded."""
    params = {**dict(module.named_buffers()), **dict(module.named_parameters())}
    unknown = [k for k in tensors if k not in params]
    if unknown:
        from ..errors import did_you_mean

        raise MPMError(f"{what} holds weights this stack does not have: {unknown[:3]}"
                       f"{did_you_mean(unknown[0], params)} (was it trained with another model config?)")
    with torch.no_grad():
        for name, value in tensors.items():
            p = params[name]
            if tuple(p.shape) != tuple(value.shape):
                raise MPMError(f"{what}: {name} has shape {tuple(value.shape)}, the stack's is {tuple(p.shape)}")
            p.copy_(value.to(device=p.device, dtype=p.dtype))
    return list(tensors)
