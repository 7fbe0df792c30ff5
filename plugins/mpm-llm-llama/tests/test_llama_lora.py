"""LoRA through peft: train, merge, save, reload."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from mpm_framework.contracts.prompt import Turn
from mpm_framework.errors import ConfigError
from mpm_framework.stacks.trainable import apply_freeze_sets

CONVERSATIONS = [
    [Turn("user", "<image>\nWhat is in the image?"), Turn("assistant", "a red circle on the left")],
    [Turn("user", "上面有什么?"), Turn("assistant", "上面有两个蓝色的正方形")],
]


def _llm(path, **options):
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_config({"path": str(path), **options})


# Merging changes the rounding (W x + B A x vs (W + B A) x): fp32 noise that grows
# with the logits' scale (up to ~8 here), so the bound is a few ulps of the largest.
MERGE_TOL = dict(rtol=1e-4, atol=5e-5)


def _logits(llm, batch):
    llm.eval()
    with torch.no_grad():
        return llm(llm.embed_tokens(batch["input_ids"]), batch).logits


def _train(llm, steps=6):
    counts = apply_freeze_sets({"llm": llm}, ["llm.lora"], [])
    assert 0 < counts["llm"][0] < counts["llm"][1] / 4
    batch = llm.collate([llm.format_prompt(c, 2) for c in CONVERSATIONS])
    optimizer = torch.optim.Adam([p for p in llm.parameters() if p.requires_grad], lr=2e-2)
    llm.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = llm(llm.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    return batch


@pytest.fixture
def trained(llama_dir):
    torch.manual_seed(0)  # LoRA A matrices draw from the global stream: same adapter in every run
    llm = _llm(llama_dir, lora={"enabled": True, "r": 4, "alpha": 8})
    assert llm.has_lora and "lora" in llm.trainable_groups()
    base = _logits(_llm(llama_dir), llm.collate([llm.format_prompt(CONVERSATIONS[0], 2)]))
    batch = _train(llm)
    adapted = _logits(llm, batch)
    assert adapted.abs().max() < 20  # MERGE_TOL is sized for logits of this scale
    assert not torch.allclose(adapted[:1, : base.shape[1]], base, atol=1e-3), "training changed nothing"
    return llm, batch, adapted


def test_merge_and_save_reloads_to_the_adapter_models_logits(trained, tmp_path):
    llm, batch, adapted = trained
    llm.save_pretrained(tmp_path / "merged")
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any("lora" in k or "base_layer" in k for k in keys)
    assert "model.layers.0.self_attn.q_proj.weight" in keys
    assert llm.has_lora  # saving merged copies; the live model keeps its adapter
    reloaded = _llm(tmp_path / "merged")
    assert not reloaded.has_lora
    torch.testing.assert_close(_logits(reloaded, batch), adapted, **MERGE_TOL)
    torch.testing.assert_close(_logits(llm, batch), adapted, rtol=0, atol=0)


def test_merge_in_place_keeps_the_logits(trained):
    llm, batch, adapted = trained
    llm.merge_lora()
    assert not llm.has_lora and "lora" not in llm.trainable_groups()
    assert not any("lora" in n for n, _ in llm.named_parameters())
    torch.testing.assert_close(_logits(llm, batch), adapted, **MERGE_TOL)


def test_adapter_saved_alone_loads_back(trained, llama_dir, tmp_path):
    llm, batch, adapted = trained
    llm.save_adapter(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    again = _llm(llama_dir, lora={"adapter_path": str(tmp_path / "adapter")})
    assert again.has_lora
    torch.testing.assert_close(_logits(again, batch), adapted, rtol=0, atol=1e-5)


def test_lora_with_gradient_checkpointing_and_frozen_base(llama_dir):
    llm = _llm(llama_dir, lora={"enabled": True, "r": 2}, gradient_checkpointing=True)
    _train(llm, steps=2)
    assert all(p.grad is None for n, p in llm.named_parameters() if "lora_" not in n)


def test_unknown_lora_targets_list_the_linear_layers(llama_dir):
    with pytest.raises(ConfigError, match=r"not modules of this model.*q_proj"):
        _llm(llama_dir, lora={"enabled": True, "target_modules": ["query_key_value"]})
