"""One trainer per output folder: two real trainer processes on one folder, stale
locks, release at the end and on errors (run_lock.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from mpm_framework.testing import tiny_chat_stack
from mpm_framework.training import train_stage
from mpm_framework.training.metrics import read_metrics
from mpm_framework.training.run_lock import LOCK_NAME, RunLocked, acquire, run_lock

REPO = Path(__file__).resolve().parents[2]

# The first trainer: a real training run that pauses after step 2 until the test says go,
# so the second one is started while the first certainly holds the folder.
_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.training import train_stage

    cfg = resolve_config(recipe=sys.argv[1])
    go, paused = Path(sys.argv[2]), Path(sys.argv[3])

    def wait(step, row):
        if step == 2:
            paused.touch()
            deadline = time.time() + 240
            while not go.exists() and time.time() < deadline:
                time.sleep(0.02)

    train_stage(build_stack(cfg), cfg, progress=False, callbacks=[wait])
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPM_PLUGINS="mpm_framework.testing_plugin", MPM_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


@pytest.mark.slow
def test_second_trainer_on_the_same_folder_fails_at_once(tmp_path, helpers):
    helpers.write_images(tmp_path, 16)
    data = helpers.write_jsonl(tmp_path / "pairs.jsonl", helpers.pair_records(16))
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"llm": "tiny-llm", "vision": "tiny-vision"},
        "data": {"train": [{"path": str(data)}], "max_length": 256},
        "run": {"stage": "align", "output_dir": str(out), "max_steps": 6, "batch_size": 2, "save_every": 3,
                "log_every": 1000, "progress": False}}))
    (tmp_path / "holder.py").write_text(_HOLDER)
    go, paused = tmp_path / "go", tmp_path / "paused"
    first = subprocess.Popen([sys.executable, str(tmp_path / "holder.py"), str(recipe), str(go), str(paused)],
                             env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not paused.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert paused.exists(), first.communicate(timeout=30)
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()

        second = subprocess.run([sys.executable, "-m", "mpm_framework.training", "--config", str(recipe)],
                                env=_env(), cwd=REPO, capture_output=True, text=True, timeout=180)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "Traceback" not in second.stderr
        message = second.stderr
        assert str(out) in message and f"pid {first.pid}" in message and socket.gethostname() in message
        assert holder["started"] in message
        assert first.poll() is None  # the first run is still paused: the second failed without waiting
        assert not (out / "align" / "metrics.jsonl").read_text().count('"step": 3')
    finally:
        go.touch()
        stdout, stderr = first.communicate(timeout=240)
    assert first.returncode == 0, stdout[-3000:] + stderr[-3000:]
    rows = read_metrics(out / "align" / "metrics.jsonl")
    assert [r["step"] for r in rows if r["event"] == "step"] == [1, 2, 3, 4, 5, 6]  # one run's lines, in order
    assert [r["event"] for r in rows].count("end") == 1 and rows[-1]["event"] == "end"
    assert not (out / LOCK_NAME).exists()  # released at the end


def _cfg(make_cfg, pairs_dir, **run):
    return make_cfg(pairs_dir / "pairs.jsonl", max_steps=2, save_every=0, **run)


def test_a_held_folder_is_refused_before_anything_is_written(pairs_dir, make_cfg):
    out = pairs_dir / "run"
    partial = out / "align" / "checkpoints" / "step-00000002.tmp"
    partial.mkdir(parents=True)  # another run's checkpoint being written
    with run_lock(out) as held:
        with pytest.raises(RunLocked) as info:
            train_stage(tiny_chat_stack(), _cfg(make_cfg, pairs_dir), progress=False)
        assert (out / LOCK_NAME).exists() and held.held
    message = str(info.value)
    assert str(out) in message and f"pid {os.getpid()}" in message and held.holder["started"] in message
    assert partial.is_dir()  # clean_partial did not run
    assert not (out / "align" / "metrics.jsonl").exists() and not (out / "align" / "config.yaml").exists()


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_a_stale_lock_is_taken_over_with_a_notice(pairs_dir, make_cfg, capsys):
    out = pairs_dir / "run"
    out.mkdir()
    stale = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+0000"}
    (out / LOCK_NAME).write_text(json.dumps(stale))
    result = train_stage(tiny_chat_stack(), _cfg(make_cfg, pairs_dir), progress=False)
    assert result.steps == 2
    printed = capsys.readouterr().out
    assert "taking over the stale lock" in printed and f"pid {stale['pid']}" in printed
    assert "no longer running" in printed
    assert not (out / LOCK_NAME).exists()


def test_a_lock_from_another_machine_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere-node-7", "started": "x"}))
    with pytest.raises(RunLocked, match=f"elsewhere-node-7.*delete {tmp_path / LOCK_NAME}"):
        acquire(tmp_path)


class _Crash(Exception):
    pass


def test_the_lock_is_released_on_errors(pairs_dir, make_cfg):
    def crash(step, row):
        raise _Crash

    with pytest.raises(_Crash):
        train_stage(tiny_chat_stack(), _cfg(make_cfg, pairs_dir), progress=False, callbacks=[crash])
    assert not (pairs_dir / "run" / LOCK_NAME).exists()
    with run_lock(pairs_dir / "run") as lock:  # free again
        assert lock.held
    result = train_stage(tiny_chat_stack(), _cfg(make_cfg, pairs_dir, resume=True), progress=False)
    assert result.steps == 2 and not (pairs_dir / "run" / LOCK_NAME).exists()


def test_a_launcher_holds_the_lock_for_its_workers(pairs_dir, make_cfg):
    out = pairs_dir / "run"
    with run_lock(out) as launcher:
        with pytest.raises(RunLocked):
            acquire(out)  # anyone else is refused
        with launcher.for_children():  # what `--nproc N` does around torchrun
            result = train_stage(tiny_chat_stack(), _cfg(make_cfg, pairs_dir), progress=False)
        assert result.steps == 2
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()  # still the launcher's
    assert not (out / LOCK_NAME).exists()


def test_a_launcher_refuses_a_held_folder_before_writing(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from mpm_framework.training import launch

    started = []
    monkeypatch.setattr(launch.subprocess, "call", lambda command: started.append(command) or 0)
    cfg = OmegaConf.create({"run": {"output_dir": str(tmp_path / "run")}})
    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLocked, match="in use by another training run"):
            launch.launch_workers(cfg, "align", 2, resume=False)
    assert not started and not (tmp_path / "run" / "launch-config.yaml").exists()
