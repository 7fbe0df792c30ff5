"""LoRA on the llama plugin through the core's one path (``run.lora``,
``mpm_framework.training.lora``): train, merge, save, reload, and the same
training as the plugin's former own peft wrapper (``model.llm.lora``)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from safetensors import safe_open

from mpm_framework.contracts.prompt import Turn
from mpm_framework.errors import ConfigError
from mpm_framework.stacks.text import TextStack
from mpm_framework.stacks.trainable import apply_freeze_sets
from mpm_framework.training.lora import apply_lora, lora_parameter_names, merge_lora

CONVERSATIONS = [
    [Turn("user", "<image>\nWhat is in the image?"), Turn("assistant", "a red circle on the left")],
    [Turn("user", "上面有什么?"), Turn("assistant", "上面有两个蓝色的正方形")],
]


def _llm(path, **options):
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_pretrained(path, **options)


def _lora(**options):
    """A ``run.lora`` section."""
    lora = {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            "components": ["llm"], **options}
    return OmegaConf.create(lora)


def _with_lora(llm, **options):
    apply_lora(TextStack(llm), _lora(**options))
    return llm


# Merging changes the rounding (W x + B A x vs (W + B A) x): fp32 noise that grows
# with the logits' scale (up to ~8 here), so the bound is a few ulps of the largest.
MERGE_TOL = dict(rtol=1e-4, atol=5e-5)


def _logits(llm, batch):
    llm.eval()
    with torch.no_grad():
        return llm(llm.embed_tokens(batch["input_ids"]), batch).logits


def _train(llm, steps=6, batch=None):
    counts = apply_freeze_sets({"llm": llm}, ["llm.lora"], [])
    assert 0 < counts["llm"][0] < counts["llm"][1] / 4
    batch = batch or llm.collate([llm.format_prompt(c, 2) for c in CONVERSATIONS])
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
    return batch, losses


@pytest.fixture
def trained(llama_dir):
    torch.manual_seed(0)  # LoRA A matrices draw from the global stream: same adapter in every run
    llm = _with_lora(_llm(llama_dir))
    assert "lora" in llm.trainable_groups()
    base = _logits(_llm(llama_dir), llm.collate([llm.format_prompt(CONVERSATIONS[0], 2)]))
    batch, _ = _train(llm)
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
    assert lora_parameter_names(llm)  # saving merged copies; the live model keeps its adapters
    reloaded = _llm(tmp_path / "merged")
    assert not lora_parameter_names(reloaded)
    torch.testing.assert_close(_logits(reloaded, batch), adapted, **MERGE_TOL)
    torch.testing.assert_close(_logits(llm, batch), adapted, rtol=0, atol=0)


def test_merge_in_place_keeps_the_logits(trained):
    llm, batch, adapted = trained
    assert merge_lora(llm) == 4 * llm.num_layers
    assert "lora" not in llm.trainable_groups() and not lora_parameter_names(llm)
    torch.testing.assert_close(_logits(llm, batch), adapted, **MERGE_TOL)


def test_lora_with_gradient_checkpointing_and_frozen_base(llama_dir):
    llm = _with_lora(_llm(llama_dir, gradient_checkpointing=True), r=2)
    _train(llm, steps=2)
    assert all(p.grad is None for n, p in llm.named_parameters() if "lora_" not in n)


def test_unknown_lora_targets_name_the_setting(llama_dir):
    with pytest.raises(ConfigError, match=r"LoRA for 'llm'.*run.lora.target_modules=\['query_key_value'\]"):
        _with_lora(_llm(llama_dir), target_modules=["query_key_value"])


def test_run_lora_trains_like_the_former_plugin_lora(llama_dir):
    """The plugin's former ``model.llm.lora`` wrapped the transformers model with
    ``peft.get_peft_model`` (task CAUSAL_LM) and kept calling it; run.lora
    injects into the same layers. From the same adapter weights both train to
    the same losses, step for step."""
    from peft import LoraConfig, get_peft_model

    ours = _with_lora(_llm(llama_dir))
    former = _llm(llama_dir)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        task_type="CAUSAL_LM")
    former.hf = get_peft_model(former.hf, config).get_base_model()
    start = {n: p.detach().clone() for n, p in ours.named_parameters() if ".lora_" in n}
    assert sorted(start) == sorted(lora_parameter_names(former))  # the same parameter names
    with torch.no_grad():
        for name, p in former.named_parameters():
            if name in start:
                p.copy_(start[name])
    _, our_losses = _train(ours)
    _, former_losses = _train(former)
    assert our_losses == former_losses



def test_a_saved_peft_adapter_starts_run_lora(llama_dir, tmp_path):
    """run.lora.adapter_path: a PeftModel.save_pretrained folder (what the plugin's
    former save_adapter wrote, or a hub adapter) fills the injected layers with
    its own r, alpha and targets; the logits equal the peft model's."""
    from peft import LoraConfig, get_peft_model

    donor = _llm(llama_dir)
    config = LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(donor.hf, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter matter
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    donor.hf = peft_model.get_base_model()
    batch = donor.collate([donor.format_prompt(c, 2) for c in CONVERSATIONS])
    expected = _logits(donor, batch)
    llm = _with_lora(_llm(llama_dir), r=0, adapter_path=str(tmp_path / "adapter"))  # r, targets: the adapter's
    assert sorted(lora_parameter_names(llm)) == sorted(lora_parameter_names(donor))
    torch.testing.assert_close(_logits(llm, batch), expected, rtol=0, atol=1e-6)
    assert not torch.allclose(expected, _logits(_llm(llama_dir), batch), atol=1e-3)
    with pytest.raises(ConfigError, match="no PEFT adapter"):
        _with_lora(_llm(llama_dir), adapter_path=str(tmp_path))
