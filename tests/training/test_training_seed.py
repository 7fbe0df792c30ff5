"""Same seed, same run: random initialisation follows ``run.seed`` (seeding.py),
in one process and in 2-process DDP."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from mpm_framework.composition import build_stack
from mpm_framework.config.loading import resolve_config
from mpm_framework.training import train_stage
from mpm_framework.training.metrics import loss_curve

REPO = Path(__file__).resolve().parents[2]

# An LLM and a vision encoder like the real ones (llama, CLIP, BEiT-3): their own init is seeded
# inside a forked RNG, so what has no seed of its own -- the connector, LoRA adapters -- draws
# from the caller's global RNG unless the build seeds it.
_MODULE = textwrap.dedent("""
    import torch
    from mpm_framework.hookspecs import hookimpl
    from mpm_framework.testing import TinyLLM, TinyVision

    class ForkedLLM(TinyLLM):
        @classmethod
        def from_config(cls, config, context):
            with torch.random.fork_rng(devices=[]):
                return cls(config)

    class ForkedVision(TinyVision):
        @classmethod
        def from_config(cls, config, context):
            with torch.random.fork_rng(devices=[]):
                return cls(config)

    @hookimpl
    def mpm_register_llms(register):
        register("forked-llm", "mpm_seed_test_vision:ForkedLLM", config="mpm_framework.testing:TinyLLMConfig")

    @hookimpl
    def mpm_register_vision_encoders(register):
        register("forked-vision", "mpm_seed_test_vision:ForkedVision",
                 config="mpm_framework.testing:TinyVisionConfig")
""")


@pytest.fixture
def forked_components(tmp_path, monkeypatch, mpm_plugin):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "mpm_seed_test_vision.py").write_text(_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    module = importlib.import_module("mpm_seed_test_vision")
    mpm_plugin(module, name="mpm-seed-test-vision")
    yield folder
    sys.modules.pop("mpm_seed_test_vision", None)


def _cfg(tmp_path, data, seed, out, **run):
    return resolve_config(llm="forked-llm", vision="forked-vision", overrides=[
        f"run.seed={seed}", f"run.output_dir={tmp_path / out}", "run.stage=align", "run.max_steps=2",
        "run.batch_size=4", "run.lr=5e-3", "run.save_every=0", "run.progress=false", "data.max_length=256",
        f"data.train=[{{path: {data}}}]", *(f"run.{k}={v}" for k, v in run.items())])


def _connector(stack) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in stack.connector.named_parameters()}


def test_builds_follow_the_seed_not_the_global_rng(forked_components, pairs_dir, tmp_path):
    data = pairs_dir / "pairs.jsonl"
    torch.manual_seed(123)
    first = _connector(build_stack(_cfg(tmp_path, data, 7, "a")))
    torch.rand(1000)  # whatever the program drew before
    state = torch.random.get_rng_state()
    second = _connector(build_stack(_cfg(tmp_path, data, 7, "a")))
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert first.keys() == second.keys() and first
    for name, value in first.items():
        assert torch.equal(second[name], value), name
    other = _connector(build_stack(_cfg(tmp_path, data, 8, "a")))
    assert all(not torch.equal(other[name], value) for name, value in first.items() if value.ndim == 2)


def test_two_same_seed_runs_give_the_same_loss_curve(forked_components, pairs_dir, tmp_path):
    data = pairs_dir / "pairs.jsonl"
    runs = []
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        torch.rand(17 if out == "b" else 1)  # different global RNG states before each build
        cfg = _cfg(tmp_path, data, seed, out, lora="{r: 2, components: [llm], target_modules: [head]}")
        runs.append(train_stage(build_stack(cfg), cfg, progress=False).losses)
    assert runs[0] == runs[1]
    assert runs[2] != runs[0]


@pytest.mark.slow
def test_two_same_seed_ddp_runs_give_the_same_loss_curve(forked_components, pairs_dir, tmp_path):
    env = dict(os.environ)
    env.update(MPM_PLUGINS="mpm_seed_test_vision", MPM_DISABLE_PLUGIN_AUTOLOAD="1",
               OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), str(forked_components), env.get("PYTHONPATH", "")]))
    curves = []
    for out in ("a", "b"):
        recipe = tmp_path / f"{out}.yaml"
        recipe.write_text(yaml.safe_dump({
            "model": {"llm": "forked-llm", "vision": "forked-vision"},
            "data": {"train": [{"path": str(pairs_dir / "pairs.jsonl")}], "max_length": 256},
            "run": {"stage": "align", "output_dir": str(tmp_path / out), "max_steps": 4, "batch_size": 2,
                    "lr": 5e-3, "save_every": 0, "progress": False, "engine": "ddp", "seed": 11}}))
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               "-m", "mpm_framework.training", "--config", str(recipe)],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "engine ddp, 2 process(es)" in done.stdout
        curves.append([loss for _, loss in loss_curve(tmp_path / out / "align" / "metrics.jsonl")])
    assert len(curves[0]) == 4 and curves[0] == curves[1]
