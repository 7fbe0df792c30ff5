"""The run folder: self-describing for inference.

::

    <run.output_dir>/
      run.json                     stages finished, in order (the last one is what load_stack loads)
      <stage>/
        config.yaml                the fully resolved config of the stage
        final/model.safetensors    every weight the stage chain changed (trainable + inherited)
        final/summary.json         steps, final loss, data report, trainable counts
        checkpoints/step-N/        resumable state (see checkpoint.py)
        metrics.jsonl  loss_curve.png

This module finds the parts of a run folder (:func:`stage_folder`,
:func:`read_stage_config`, :func:`weights_file`); building the stack from them is
``mpm_framework.composition.load_stack(path)`` (``load_run`` here is its old name).
A run folder is data: a ``trust_remote_code`` in its config.yaml is switched off
with a warning; code shipped with a model runs only when the caller grants it
(``--trust-remote-code``, ``load_stack(path, trust_remote_code=True)``; see
``mpm_framework.security``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import MPMError
from .checkpoint import commit, latest_checkpoint, write_json_atomic

FINAL = "final"
WEIGHTS = "model.safetensors"


def read_run_index(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "run.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            pass
    return {"stages": []}


def record_stage(output_dir: Path, stage: str, info: dict[str, Any]) -> None:
    index = read_run_index(output_dir)
    stages = [s for s in index.get("stages", []) if s.get("stage") != stage]
    stages.append({"stage": stage, **info})
    index["stages"] = stages
    write_json_atomic(output_dir / "run.json", index)


def stage_folder(path: str | Path, stage: str | None = None) -> Path:
    """The stage folder a path means: a stage folder itself, or a run folder
    (its last finished stage, or ``stage``)."""
    p = Path(path)
    if stage is not None:
        candidate = p / stage if (p / stage / "config.yaml").is_file() else p
        if (candidate / "config.yaml").is_file():
            return candidate
        raise MPMError(f"{p} has no stage '{stage}' (no {p / stage / 'config.yaml'})")
    if (p / "config.yaml").is_file():
        return p
    finished = [s["stage"] for s in read_run_index(p).get("stages", [])]
    if finished:
        return p / finished[-1]
    present = sorted(c.name for c in p.iterdir() if (c / "config.yaml").is_file()) if p.is_dir() else []
    if len(present) == 1:
        return p / present[0]
    raise MPMError(f"{p} is not a training run folder (no config.yaml, no run.json)"
                   + (f"; stages found: {', '.join(present)} -- pass stage=" if present else ""))


def weights_file(path: str | Path, stage: str | None = None) -> Path:
    """The weights a path stands for: a .safetensors file, a stage's final
    weights, or (for an unfinished stage) its newest checkpoint."""
    p = Path(path)
    if p.is_file():
        return p
    folder = stage_folder(p, stage)
    final = folder / FINAL / WEIGHTS
    if final.is_file():
        return final
    latest = latest_checkpoint(folder / "checkpoints")
    if latest is not None:
        return latest / "trainable.safetensors"
    raise MPMError(f"{folder} holds no trained weights yet (no {FINAL}/{WEIGHTS}, no checkpoint)")


def write_final(folder: Path, tensors: dict[str, Any], summary: dict[str, Any], metadata: dict[str, str]) -> Path:
    from .checkpoint import save_tensors_atomic

    tmp = folder / f"{FINAL}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors_atomic(tensors, tmp / WEIGHTS, metadata=metadata)
    write_json_atomic(tmp / "summary.json", summary)
    commit(tmp, folder / FINAL)
    return folder / FINAL


def load_weights(stack: Any, path: str | Path, stage: str | None = None) -> list[str]:
    """Load trained weights (file, stage or run folder) into ``stack``; returns their names."""
    from safetensors.torch import load_file

    from .checkpoint import load_weights_into

    file = weights_file(path, stage)
    return load_weights_into(stack, load_file(str(file)), str(file))


def read_stage_config(folder: str | Path):
    """The resolved config a stage folder saved (``config.yaml``), with any
    ``trust_remote_code`` in it switched off (warning): the folder is data, and
    only the caller grants remote code (``mpm_framework.security``)."""
    from ..config.loading import load_yaml, migrate_saved_lora, resolve_config
    from ..security import ignore_remote_code_settings
    from .stages import check_saved_stages

    path = Path(folder) / "config.yaml"
    cfg = resolve_config(recipe=migrate_saved_lora(load_yaml(path)))
    ignore_remote_code_settings(cfg, path)
    check_saved_stages(cfg, str(path))  # a run.stage import string would run the code it names
    return cfg


def load_run(run_dir: str | Path, stage: str | None = None, device: str = "cpu",
             trust_remote_code: bool | None = None):
    """The old name of :func:`mpm_framework.composition.load_stack` (kept for
    code that imports it from here)."""
    from ..composition import load_stack

    return load_stack(run_dir, stage=stage, device=device, trust_remote_code=trust_remote_code)
