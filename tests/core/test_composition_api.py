"""The public composition API a plugin (the toy world) uses like any user:
``build_component`` / ``component_config`` for one component, ``load_stack``
for a trained run."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mpm_framework.composition import build_component, build_stack, component_config, load_stack
from mpm_framework.config.loading import resolve_config
from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError, MPMError


def test_build_component_applies_overrides_like_a_stack(tiny_components):
    llm = build_component("llm", "tiny-llm", ["hidden_size=16", "num_layers=1"])
    assert llm.hidden_size == 16
    # the same config and seed build the same weights as build_stack does
    stack = build_stack(resolve_config(llm="tiny-llm", vision="tiny-vision",
                                       overrides=["model.llm.hidden_size=16", "model.llm.num_layers=1"]))
    ours, theirs = dict(llm.named_parameters()), dict(stack.llm.named_parameters())
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert component_config("llm", "tiny", {"hidden_size": 8}).hidden_size == 8  # aliases and dicts


def test_build_component_passes_the_context(tiny_components):
    connector = build_component("connector", "mlp2x_gelu",
                                context=BuildContext(llm_hidden_size=12, vision_hidden_size=6))
    assert connector(torch.zeros(1, 3, 6)).shape == (1, 3, 12)


def test_build_component_errors_say_what_to_do(tiny_components):
    with pytest.raises(ConfigError, match="Did you mean 'vision'"):
        build_component("vison", "tiny-vision")
    with pytest.raises(ConfigError, match="hidden_size"):
        build_component("llm", "tiny-llm", ["hiden_size=16"])


def test_load_stack_rebuilds_a_trained_run(tiny_components, tmp_path):
    from mpm_framework.training import train_stage

    for i, color in enumerate(("red", "blue")):
        Image.new("RGB", (32, 32), color).save(tmp_path / f"{i}.png")
    data = [{"image": str(tmp_path / f"{i % 2}.png"), "text": f"a {c} square", "lang": "en"}
            for i, c in enumerate(("red", "blue", "red", "blue"))]
    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=[
        "run.stage=align", f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2", "run.batch_size=2",
        "run.lr=1e-2", "run.save_every=0", "run.progress=false"])
    stack = build_stack(cfg)
    train_stage(stack, cfg, train_samples=data, progress=False)
    loaded = load_stack(tmp_path / "run")
    assert not loaded.training
    trained = dict(stack.named_parameters())
    assert all(torch.equal(p, trained[n]) for n, p in loaded.named_parameters())
    with pytest.raises(MPMError, match="run directory not found"):
        load_stack(tmp_path / "nowhere")


def test_load_stack_owns_the_building_and_load_run_is_its_old_name(tiny_components, tmp_path):
    """The building lives in composition (no import circle with run_dir); run_dir
    only finds the folder and reads its config; the old name loads the same."""
    import inspect

    from mpm_framework.training import run_dir

    assert "build_stack" not in inspect.getsource(run_dir)
    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=[
        "run.stage=align", f"run.output_dir={tmp_path / 'run'}", "run.max_steps=1", "run.batch_size=1",
        "run.save_every=0", "run.progress=false"])
    Image.new("RGB", (32, 32), "red").save(tmp_path / "0.png")
    from mpm_framework.training import load_run, train_stage

    train_stage(build_stack(cfg), cfg, train_samples=[{"image": str(tmp_path / "0.png"), "text": "red",
                                                      "lang": "en"}], progress=False)
    a, b = load_stack(tmp_path / "run", stage="align"), load_run(tmp_path / "run")
    assert all(torch.equal(p, dict(b.named_parameters())[n]) for n, p in a.named_parameters())
    assert run_dir.read_stage_config(tmp_path / "run" / "align").model.llm.name == "tiny-llm"


def test_commands_build_through_the_public_api_only():
    """No command or loader reaches past composition to a registration's factory."""
    from pathlib import Path

    import mpm_framework

    root = Path(mpm_framework.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "composition.py" and ".from_config(" in p.read_text(encoding="utf-8")
                 and "load_factory()" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_pivot_llm_alone_matches_the_stacks_llm(tiny_components):
    """``mpm eval`` / ``mpm translate --llm`` build the LLM alone as build_stack builds it."""
    from mpm_framework.inference.loading import pivot_llm_from_config

    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision",
                         overrides=["model.llm.hidden_size=16", "run.seed=3"])
    alone, stack = pivot_llm_from_config(cfg), build_stack(cfg)
    theirs = dict(stack.llm.named_parameters())
    assert alone.hidden_size == 16
    assert all(torch.equal(p, theirs[n]) for n, p in alone.named_parameters())


def test_paint_and_chat_loading_reject_the_other_kind(tiny_components):
    from mpm_framework.inference.loading import load_paint_stack

    class Spec:
        def resolve(self):
            return resolve_config(llm="tiny-llm", vision="tiny-vision")

    with pytest.raises(ConfigError, match="paint needs a paint stack"):
        load_paint_stack(Spec())
