"""Engine configuration: the shipped DeepSpeed configs and their overrides."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from mpm_framework.errors import ConfigError
from mpm_framework.training.config import RunConfig
from mpm_framework.training.engines import deepspeed_config, make_engine, param_groups
from mpm_framework.training.schedule import lr_factor


def _run(**kw):
    return OmegaConf.merge(OmegaConf.structured(RunConfig), kw)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_shipped_configs_are_filled_from_the_run(stage):
    cfg = deepspeed_config(_run(zero_stage=stage, batch_size=3, grad_accum=4, max_grad_norm=0.5,
                                precision="bf16"), world_size=2)
    assert cfg["zero_optimization"]["stage"] == stage
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"]) \
        == (3, 4, 24)
    assert cfg["gradient_clipping"] == 0.5 and cfg["bf16"]["enabled"] is True and cfg["fp16"]["enabled"] is False
    assert "optimizer" not in cfg and "scheduler" not in cfg
    assert ("stage3_param_persistence_threshold" in cfg["zero_optimization"]) == (stage == 3)


def test_user_config_merges_over_the_shipped_one(tmp_path):
    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"zero_optimization": {"overlap_comm": True}, "steps_per_print": 7}))
    cfg = deepspeed_config(_run(deepspeed_config=str(user), offload=True), world_size=1)
    zero = cfg["zero_optimization"]
    assert zero["overlap_comm"] is True and zero["contiguous_gradients"] is True and cfg["steps_per_print"] == 7
    assert zero["offload_optimizer"]["device"] == "cpu" and "offload_param" not in zero  # params: ZeRO-3 only


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"optimizer": {"type": "AdamW"}}, "optimizer"),
        ({"train_micro_batch_size_per_gpu": 16}, "run.batch_size"),
        ({"zero_optimization": {"stage": 3}}, "zero_stage"),
        ({"zero_optimization": {"sub_group_size": "auto"}}, "auto"),
    ],
)
def test_contradicting_deepspeed_configs_are_rejected(tmp_path, user, message):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(user))
    with pytest.raises(ConfigError, match=message):
        deepspeed_config(_run(deepspeed_config=str(path)), world_size=1)


def test_engine_and_precision_names_are_checked():
    with pytest.raises(ConfigError, match="Did you mean 'deepspeed'"):
        make_engine(_run(engine="deepspeeed"))
    with pytest.raises(ConfigError, match="Did you mean 'bf16'"):
        make_engine(_run(precision="bf61"))


def test_no_weight_decay_on_biases_and_norms():
    import torch

    layer = torch.nn.Linear(3, 4)
    groups = param_groups(list(layer.named_parameters()), 0.1)
    assert [len(g["params"]) for g in groups] == [1, 1] and groups[1]["weight_decay"] == 0.0


def test_schedules():
    assert lr_factor(0, 100, warmup_steps=10) == 0.0
    assert lr_factor(5, 100, warmup_steps=10, warmup_start_factor=0.1) == pytest.approx(0.55)
    assert lr_factor(10, 100, warmup_steps=10) == 1.0
    assert lr_factor(55, 100, warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor(100, 100, warmup_steps=10, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(99, 100, 0, "constant") == 1.0
    with pytest.raises(ConfigError, match="Did you mean 'cosine'"):
        lr_factor(1, 10, schedule="cosin")
