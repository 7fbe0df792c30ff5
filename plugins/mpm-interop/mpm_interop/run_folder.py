"""Writing an imported model as a run folder (``mpm_framework.training.run_dir``).

An import is a one-stage run named ``import``: ``config.yaml`` is the resolved
config that rebuilds the stack, ``final/model.safetensors`` holds the weights
the components' own folders do not (the bridge, the vision encoder), and
``run.json`` records the stage with where the weights came from. Component
folders (an LLM in its own checkpoint layout, an SD layout) sit under
``import/`` and the config names them by absolute path, as ``load_run`` reads
paths as they are written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mpm_framework.config.choices import dtype_name, torch_dtype
from mpm_framework.errors import ConfigError

STAGE = "import"


def prepare_out(out: Path) -> Path:
    """The stage folder of a new run at ``out``; an existing run is never overwritten."""
    out = out.expanduser().resolve()
    if (out / "run.json").exists() or (out / STAGE / "config.yaml").exists():
        raise ConfigError(f"{out} already holds a run; choose another --out (nothing was written)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    folder = out / STAGE
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_run(out: Path, model: dict[str, Any], weights: dict[str, torch.Tensor], source: str, fmt: str,
              summary: dict[str, Any] | None = None, sections: dict[str, Any] | None = None) -> Path:
    """Validate ``model`` (and other config ``sections``, e.g. ``run.lora``)
    against the installed components, then write the stage."""
    from mpm_framework.config.loading import resolve_config, save_config
    from mpm_framework.training.run_dir import record_stage, write_final

    out = out.expanduser().resolve()
    folder = out / STAGE
    folder.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(recipe={"model": model, **(sections or {})})
    save_config(cfg, folder / "config.yaml")
    info = {"imported_from": source, "format": fmt, **(summary or {})}
    write_final(folder, weights, {"steps": 0, "final_loss": None, **info},
                {"format": "mpm-trainable", "stage": STAGE, "source_format": fmt})
    record_stage(out, STAGE, {"dir": STAGE, "steps": 0, "final_loss": None, "imported_from": source,
                              "format": fmt})
    (folder / "import.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def dtype_option(value: str | None, tensors: dict[str, torch.Tensor]) -> str:
    """The dtype name to build with: the option, else the checkpoint's float dtype."""
    if value:
        torch_dtype(value, "--dtype")  # a name outside DTYPES fails naming them
        return value
    for t in tensors.values():
        if t.is_floating_point():
            return dtype_name(t.dtype) or "fp32"
    return "fp32"
