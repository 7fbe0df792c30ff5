"""Running stages from a config: stage chains, and starting worker processes
(``--nproc N`` re-launches through torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..config.loading import save_config
from ..errors import MPMError
from .recipes import chain_stages, previous_stage, stage_config


def launched() -> bool:
    """True inside a torchrun / deepspeed launcher's worker."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def _finished(folder: Path, max_steps: int) -> bool:
    summary = folder / "final" / "summary.json"
    if not summary.is_file():
        return False
    try:
        return int(json.loads(summary.read_text(encoding="utf-8")).get("steps", 0)) >= max_steps
    except (json.JSONDecodeError, ValueError):
        return False


def run_chain(cfg: Any, stages: list[str], resume: bool = False, progress: bool = True) -> list[Any]:
    """Train ``stages`` in order, each built fresh from ``cfg`` and started from
    the previous stage's final weights (unless ``run.init_from`` says otherwise)."""
    from ..composition import build_stack
    from .trainer import train_stage

    results = []
    for i, name in enumerate(stages):
        scfg = stage_config(cfg, name)
        if resume:
            scfg.run.resume = True
        out = Path(str(scfg.run.output_dir))
        if resume and _finished(out / name, int(scfg.run.max_steps)):
            print(f"stage '{name}' already finished in {out / name}; skipping", flush=True)
            continue
        if scfg.run.init_from is None:
            before = stages[i - 1] if i > 0 else previous_stage(cfg, name)
            if before is not None and (out / before / "final").is_dir():
                scfg.run.init_from = str(out / before)
                print(f"stage '{name}' starts from the weights of stage '{before}' ({out / before})", flush=True)
        stack = build_stack(scfg)
        results.append(train_stage(stack, scfg, progress=progress))
    return results


def launch_workers(cfg: Any, stage_spec: str, nproc: int, resume: bool) -> None:
    """Start ``nproc`` processes with torchrun, each running this config."""
    from .run_lock import run_lock

    # The launcher locks the output folder before writing to it and holds it for its workers.
    with run_lock(Path(str(cfg.run.output_dir))) as lock, lock.for_children():
        _launch_workers(cfg, stage_spec, nproc, resume)


def _launch_workers(cfg: Any, stage_spec: str, nproc: int, resume: bool) -> None:
    out = Path(str(cfg.run.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "launch-config.yaml"
    save_config(cfg, config_path)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "mpm_framework.training", "--config", str(config_path), "--stage", stage_spec]
    if resume:
        command.append("--resume")
    from ..security import FLAG, remote_code_trusted

    if remote_code_trusted():  # the workers load the same models: pass the command line's grant on
        command.append(FLAG)
    print("launching: " + " ".join(command), flush=True)
    code = subprocess.call(command)
    if code != 0:
        raise MPMError(f"training failed in the worker processes (exit code {code}); see the messages above")


def train_from_config(cfg: Any, stage_spec: str | None = None, resume: bool = False, nproc: int | None = None,
                      progress: bool = True) -> list[Any] | None:
    """What ``mpm compose ... train`` and ``python -m mpm_framework.training`` do."""
    stage_spec = stage_spec or str(OmegaConf.select(cfg, "run.stage", default="align"))
    stages = chain_stages(cfg, stage_spec)
    nproc = int(nproc if nproc is not None else OmegaConf.select(cfg, "run.nproc", default=1))
    if nproc > 1 and not launched():
        launch_workers(cfg, ",".join(stages), nproc, resume)
        return None
    return run_chain(cfg, stages, resume=resume, progress=progress)
