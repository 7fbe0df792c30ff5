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
