"""End-to-end runs in real subprocesses: kill -9 + resume, torch DDP and DeepSpeed
ZeRO-2/3 over gloo on two CPU processes, the ``mpm compose ... train`` command.

The subprocesses see the tiny test components through ``MPM_PLUGINS``
(``mpm_framework.testing_plugin``), the same way a user tries a plugin before
packaging it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from mpm_framework.cli.main import cli
from mpm_framework.training.metrics import loss_curve

REPO = Path(__file__).resolve().parents[2]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPM_PLUGINS="mpm_framework.testing_plugin", MPM_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(extra or {})
    return env


def _recipe(folder: Path, pairs: Path, **run) -> Path:
    recipe = {"model": {"llm": "tiny-llm", "vision": "tiny-vision"},
              "data": {"train": [{"path": str(pairs)}], "max_length": 256},
              "run": {"stage": "instruct", "output_dir": str(folder / "run"), "max_steps": 8, "batch_size": 2,
                      "grad_accum": 1, "lr": 5e-3, "warmup_steps": 2, "save_every": 4, "log_every": 1000,
                      "progress": False, **run}}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _train(recipe: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 240,
           nproc: int | None = None) -> subprocess.CompletedProcess:
    if nproc:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "mpm_framework.training", "--config", str(recipe), *args]
    else:
        cmd = [sys.executable, "-m", "mpm_framework.training", "--config", str(recipe), *args]
    done = subprocess.run(cmd, env=env or _env(), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _curve(folder: Path, stage: str = "instruct") -> list[float]:
    return [loss for _, loss in loss_curve(folder / "run" / stage / "metrics.jsonl")]


def _weights(folder: Path, stage: str = "instruct") -> dict[str, torch.Tensor]:
    return load_file(str(folder / "run" / stage / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def data(tmp_path_factory, helpers):
    folder = tmp_path_factory.mktemp("data")
    helpers.write_images(folder, 32)
    return helpers.write_jsonl(folder / "pairs.jsonl", helpers.pair_records(32))


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, data):
    steps = 28
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for folder in (whole, killed):
        folder.mkdir()
    kw = dict(max_steps=steps, batch_size=4, save_every=4)
    _train(_recipe(whole, data, **kw))

    recipe = _recipe(killed, data, **kw)
    metrics = killed / "run" / "instruct" / "metrics.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mpm_framework.training", "--config", str(recipe)],
                            env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            done = len(loss_curve(metrics)) if metrics.exists() else 0
            if done >= 10:  # past the checkpoint of step 8, in the middle of the next interval
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and time.time() >= deadline:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (killed / "run" / "instruct" / "final").exists()
    logged_before_kill = len(loss_curve(metrics))
    assert 10 <= logged_before_kill < steps

    _train(recipe, "--resume")
    reference, resumed = _curve(whole), _curve(killed)
    assert len(resumed) == steps
    assert resumed == pytest.approx(reference, rel=0, abs=1e-6)
    ref_w, got_w = _weights(whole), _weights(killed)
    assert set(ref_w) == set(got_w) and any(k.startswith("llm.") for k in ref_w)
    for name, value in ref_w.items():
        torch.testing.assert_close(got_w[name], value, rtol=0, atol=1e-6)
    summary = json.loads((killed / "run" / "instruct" / "final" / "summary.json").read_text())
    assert summary["data"]["seen"] == steps * 4  # nothing read twice, nothing lost


def _close_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """Weights after 8 AdamW steps at lr 5e-3 agree to 1e-5, except the attention
    *key* bias: softmax ignores a constant shift of the keys, so its true
    gradient is zero and Adam (which divides by the gradient's own RMS) moves it
    by up to ~lr per step on pure rounding noise, which depends on the reduction
    order (measured: 2.4e-4 after 8 steps with ZeRO-3). Its tolerance is 1e-3,
    a fifth of one lr step."""
    assert set(got) == set(want)
    for name, value in want.items():
        a, b = got[name], value
        if name.endswith("self_attn.in_proj_bias"):
            width = a.shape[0] // 3
            torch.testing.assert_close(a[width: 2 * width], b[width: 2 * width], rtol=0, atol=1e-3)
            a, b = torch.cat([a[:width], a[2 * width:]]), torch.cat([b[:width], b[2 * width:]])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def single_reference(tmp_path_factory, data) -> Path:
    """One process, micro-batch 2, accumulation 2: the global batch of 2 processes x 2."""
    folder = tmp_path_factory.mktemp("single")
    _train(_recipe(folder, data, grad_accum=2))
    return folder


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tmp_path, data, single_reference):
    reference = single_reference
    folder = tmp_path / "ddp"
    folder.mkdir()
    recipe = _recipe(folder, data)
    # Through the CLI's --nproc, which re-launches itself with torchrun.
    done = subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", "compose", "--config", str(recipe),
                           "train", "--nproc", "2", "--engine", "ddp", "--no-progress"],
                          env=_env(), cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "engine ddp, 2 process(es)" in done.stdout
    # Same global batch, losses weighted by label tokens: equal up to float summation order.
    assert _curve(folder) == pytest.approx(_curve(reference), rel=1e-5)
    _close_weights(_weights(folder), _weights(reference))


@pytest.fixture(scope="module")
def extensions_dir(tmp_path_factory):
    """DeepSpeed JIT-builds its CPU shared-memory op once (~1 min); the module's runs share it."""
    return os.environ.get("TORCH_EXTENSIONS_DIR") or str(tmp_path_factory.mktemp("torch_extensions"))


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_deepspeed_zero_two_processes_match_one_process(tmp_path, data, zero_stage, extensions_dir,
                                                        single_reference):
    pytest.importorskip("deepspeed")
    reference = single_reference
    folder = tmp_path / f"zero{zero_stage}"
    folder.mkdir()
    overrides = folder / "ds.json"  # the shipped config, overridden: partition even the tiny parameters
    overrides.write_text(json.dumps({"zero_optimization": {"stage3_param_persistence_threshold": 0}}))
    recipe = _recipe(folder, data, engine="deepspeed", zero_stage=zero_stage, deepspeed_config=str(overrides))
    done = _train(recipe, nproc=2, env=_env({"TORCH_EXTENSIONS_DIR": extensions_dir}), timeout=420)
    assert "engine deepspeed, 2 process(es)" in done.stdout
    # Tolerance: same global batch and token weighting; only the reduction order differs (fp32).
    assert _curve(folder) == pytest.approx(_curve(reference), rel=1e-5)
    _close_weights(_weights(folder), _weights(reference))
    checkpoint = folder / "run" / "instruct" / "checkpoints" / "step-00000008"
    assert (checkpoint / "deepspeed").is_dir() and (checkpoint / "trainable.safetensors").is_file()
    if zero_stage == 3:
        # Resume from DeepSpeed's partitioned state: a copy of the run with the step-8 checkpoint and the
        # final weights removed (as if it had died after step 4) must finish identically.
        crashed = tmp_path / "crashed"
        shutil.copytree(folder, crashed)
        run = crashed / "run" / "instruct"
        shutil.rmtree(run / "final")
        shutil.rmtree(run / "checkpoints" / "step-00000008")
        again = _train(recipe, "--resume", f"run.output_dir={crashed / 'run'}", nproc=2,
                       env=_env({"TORCH_EXTENSIONS_DIR": extensions_dir}), timeout=420)
        assert "resumed from" in again.stdout and "step-00000004" in again.stdout
        assert _curve(crashed) == _curve(folder)
        for name, value in _weights(folder).items():
            torch.testing.assert_close(_weights(crashed)[name], value, rtol=0, atol=1e-6)


# -- the command line, in process -----------------------------------------------------------------


def test_compose_train_command(tiny_components, tmp_path, data):
    recipe = _recipe(tmp_path, data, max_steps=3, stage="align")
    runner = CliRunner()
    args = ["compose", "--config", str(recipe), "train", "--stage", "align", "--no-progress"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "align: 3 steps" in first.output and "trainable set: connector" in first.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "--resume" in again.output and "Traceback" not in again.output
    more = runner.invoke(cli, [*args, "--resume", "run.max_steps=5"])
    assert more.exit_code == 0, more.output
    assert "resumed from" in more.output and "align: 5 steps" in more.output
    typo = runner.invoke(cli, ["compose", "--config", str(recipe), "train", "run.lrr=1"])
    assert typo.exit_code == 1 and "Did you mean 'run.lr'" in typo.output
    bad_stage = runner.invoke(cli, ["compose", "--config", str(recipe), "train", "--stage", "algin"])
    assert bad_stage.exit_code == 1 and "Did you mean 'align'" in bad_stage.output
