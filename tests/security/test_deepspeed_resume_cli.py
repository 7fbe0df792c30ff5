"""``mpm compose ... train --engine deepspeed --resume`` on a checkpoint whose
DeepSpeed state file carries a pickled payload: a one-line error naming the file,
no traceback, and the payload never runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("deepspeed")

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env.update(MPM_PLUGINS="mpm_framework.testing_plugin", MPM_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _train(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", "compose", "--config", str(recipe),
                           "train", "--engine", "deepspeed", "--no-progress", *args],
                          env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_resume_refuses_a_poisoned_deepspeed_checkpoint(tmp_path, pairs, poison):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"llm": "tiny-llm", "vision": "tiny-vision"},
        "data": {"train": [{"path": str(pairs)}], "max_length": 256},
        "run": {"stage": "align", "output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 2,
                "lr": 5e-3, "warmup_steps": 0, "save_every": 2, "log_every": 1000, "progress": False,
                "zero_stage": 2},
    }))
    first = _train(recipe)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    state = tmp_path / "run" / "align" / "checkpoints" / "step-00000002" / "deepspeed" / "state"
    target = state / "mp_rank_00_model_states.pt"
    marker = tmp_path / "payload-ran"
    poison(target, marker)  # checks the payload is live

    again = _train(recipe, "--resume", "run.max_steps=4")
    output = again.stdout + again.stderr
    assert again.returncode == 1, output[-3000:]
    assert "refusing to load" in output and str(target) in output
    assert "Traceback" not in output
    assert not marker.exists()
