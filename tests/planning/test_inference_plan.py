"""`mpm plan --inference`: bytes of each dtype x int8 x offload choice, and the
layer placement behind offload (accelerate on the meta device; no GPU is used)."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mpm_framework.cli.main import cli

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"
GiB = 2**30


@pytest.fixture
def meta_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2)
    with torch.device("meta"):
        return LlamaForCausalLM(config)


def _bytes(model, dtype_bytes=2):
    return sum(p.numel() for p in model.parameters()) * dtype_bytes


def test_placement_keeps_blocks_whole_and_within_the_budget(meta_llama):
    from mpm_framework.planning.offload import _device_of, block_classes, place_layers

    assert block_classes(meta_llama) == {"LlamaDecoderLayer"}
    total = _bytes(meta_llama)
    budget = int(total * 0.6)
    placed = place_layers(meta_llama, budget, "fp16")
    assert placed.gpu_bytes <= budget
    assert 0 <= placed.gpu_bytes + placed.cpu_bytes - total < 1024  # + the rotary buffer
    assert placed.layers == 6 and 0 < placed.gpu_layers < 6
    devices = [_device_of(f"model.layers.{i}", placed.device_map) for i in range(6)]
    assert devices == sorted(devices, key=lambda d: d != 0)  # GPU layers first, then CPU
    for name, _ in meta_llama.named_parameters():  # no block is split across devices
        if ".layers." in name:
            layer = name.split(".mlp")[0].split(".self_attn")[0].split(".input_layernorm")[0]
            layer = layer.split(".post_attention_layernorm")[0]
            assert _device_of(name.rpartition(".")[0], placed.device_map) == _device_of(layer, placed.device_map)
    everything = place_layers(meta_llama, 2 * total, "fp16")
    assert everything.cpu_bytes == 0 and everything.gpu_layers == 6


def test_int8_placement_counts_linear_weights_at_one_byte(meta_llama):
    from mpm_framework.planning.inference import split_parameters
    from mpm_framework.planning.offload import place_layers

    split = split_parameters(meta_llama, (meta_llama.lm_head,))
    # per layer: q, o 64x64; k, v 32x64 (2 KV heads of 16); gate, up, down 64x128
    assert split.linear == 6 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 128)
    assert split.linear + split.rest == sum(p.numel() for p in meta_llama.parameters())
    fp16 = place_layers(meta_llama, 10 * GiB, "fp16")
    int8 = place_layers(meta_llama, 10 * GiB, "fp16", "int8")
    # the LM head is int8 too in the placement's count: every quantizable weight at one byte
    assert fp16.gpu_bytes - int8.gpu_bytes == split.linear + 1000 * 64


def test_viscpm_chat_inference_plan(monkeypatch):
    monkeypatch.delenv("MPM_MODELS", raising=False)  # plan from the architecture cards
    result = CliRunner().invoke(cli, ["plan", str(RECIPES / "viscpm_chat_balance.yaml"), "--inference",
                                      "--gpu-mem", "24GB", "--max-gpu-memory", "5GiB", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    rows = {c["label"]: c for c in plan["choices"]}
    params = sum(s["linear"] + s["rest"] for s in plan["splits"].values())
    assert 10.0e9 < params < 10.6e9  # CPM-Bee 10B (9.62 B) + BEiT-3 large with VisCPM's bridge
    assert rows["fp16"]["weights"] == 2 * params and rows["fp32"]["weights"] == 4 * params
    assert rows["fp16 + int8 linear"]["weights"] < 0.55 * rows["fp16"]["weights"]  # linear layers are ~96%
    assert not rows["fp32"]["fits"] and rows["fp16"]["fits"]  # 41.6 GiB vs 21.6 GiB usable of 24
    for label in ("fp16 + offload", "fp16 + int8 linear + offload"):
        assert rows[label]["gpu"] <= 5 * GiB and rows[label]["fits"]
        assert rows[label]["cpu"] > 0
    kv = plan["kv_bytes_per_token"]["fp16"]
    assert kv == 2 * 48 * 4096 * 2  # CPM-Bee 10B: 48 layers, width 4096 (32 heads x 128)
    text = CliRunner().invoke(cli, ["plan", str(RECIPES / "viscpm_chat_balance.yaml"), "--inference",
                                    "--max-gpu-memory", "5GiB"])
    assert text.exit_code == 0 and "fp16 + int8 linear + offload" in text.output
    assert "not run on a GPU here" in text.output
