"""One LoRA: ``run.lora`` (issue 18, item 4). A component's own ``lora`` key
is refused naming the run.lora settings to write; a run folder saved with the
llama plugin's former ``model.llm.lora`` loads as run.lora; merging folds the
adapters in with the same outputs."""

from __future__ import annotations

import pytest
import torch
import yaml

from mpm_framework.config.loading import resolve_config
from mpm_framework.errors import ConfigError


def test_component_lora_key_names_the_run_lora_settings(tiny_components):
    with pytest.raises(ConfigError) as err:
        resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=[
            "model.llm.lora.enabled=true", "model.llm.lora.r=16", "model.llm.lora.alpha=32",
            "model.llm.lora.target_modules=[linear1,linear2]"])
    message = str(err.value)
    assert "model.llm.lora was removed" in message
    assert "run.lora.r=16 run.lora.alpha=32 run.lora.target_modules=[linear1,linear2]" in message
    recipe = {"model": {"llm": "tiny-llm", "vision": {"name": "tiny-vision", "lora": {"enabled": True}}}}
    with pytest.raises(ConfigError, match=r"run.lora.components=\[vision\]"):
        resolve_config(recipe=recipe)
    with pytest.raises(ConfigError, match=r"Write run\.lora\.adapter_path=/some/adapter instead"):
        resolve_config(llm="tiny-llm", overrides=["model.llm.lora.adapter_path=/some/adapter"])
    with pytest.raises(ConfigError, match=r"run\.lora\.r=16"):  # settings without enabled: LoRA was meant
        resolve_config(llm="tiny-llm", overrides=["model.llm.lora.r=16"])
    # switched off, as every run folder saved before holds it: dropped
    cfg = resolve_config(llm="tiny-llm", overrides=["model.llm.lora.enabled=false", "model.llm.lora.r=8"])
    assert "lora" not in cfg.model.llm and cfg.run.lora.r == 0


def _lora_recipe(tmp_path, pairs):
    return {"model": {"llm": "tiny-llm", "vision": "tiny-vision"},
            "data": {"train": [{"path": str(pairs)}], "max_length": 256},
            "run": {"stage": "instruct", "output_dir": str(tmp_path / "run"), "max_steps": 3, "batch_size": 4,
                    "save_every": 0, "progress": False, "lr": 1e-2,
                    "lora": {"r": 4, "alpha": 8.0, "target_modules": ["linear1", "linear2"]}}}


def test_a_run_saved_with_model_llm_lora_loads_as_run_lora(tiny_components, pairs_dir):
    from mpm_framework.composition import build_stack, load_stack
    from mpm_framework.training import train_stage
    from mpm_framework.training.lora import lora_parameter_names

    cfg = resolve_config(recipe=_lora_recipe(pairs_dir, pairs_dir / "pairs.jsonl"))
    stack = build_stack(cfg)
    train_stage(stack, cfg, progress=False)
    trained = dict(stack.named_parameters())
    config = pairs_dir / "run" / "instruct" / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    lora = saved["run"].pop("lora")  # the layout the llama plugin's own LoRA wrote
    saved["model"]["llm"]["lora"] = {"enabled": True, "r": lora["r"], "alpha": lora["alpha"],
                                     "dropout": lora["dropout"], "target_modules": lora["target_modules"],
                                     "adapter_path": ""}
    config.write_text(yaml.safe_dump(saved))
    loaded = load_stack(pairs_dir / "run")
    assert loaded.config.run.lora.r == 4 and list(loaded.config.run.lora.components) == ["llm"]
    assert sorted(lora_parameter_names(loaded)) == sorted(lora_parameter_names(stack)) != []
    for name, p in loaded.named_parameters():
        assert torch.equal(p, trained[name]), name
    # both switches in one saved config: say which to keep
    saved["run"]["lora"] = lora
    config.write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"keep run\.lora only"):
        load_stack(pairs_dir / "run")


def test_merge_folds_the_adapters_in_with_the_same_outputs(tiny_components):
    from omegaconf import OmegaConf

    from mpm_framework.composition import compose
    from mpm_framework.training.lora import (
        apply_lora,
        lora_parameter_names,
        merge_lora,
        merged_state_dict,
        unload_lora,
    )

    stack = compose(llm="tiny-llm", vision="tiny-vision")
    plain = {k: v.clone() for k, v in stack.llm.state_dict().items()}
    apply_lora(stack, OmegaConf.create({"r": 2, "alpha": 4.0, "dropout": 0.0, "components": ["llm"],
                                        "target_modules": ["linear1", "linear2"]}))
    with torch.no_grad():
        for name, p in stack.named_parameters():
            if ".lora_" in name:
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(name)))
    ids = torch.tensor([[257, 97, 98, 99, 258]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def logits(train=False):
        stack.train(train)  # TinyLLM has no dropout: both modes give the same logits
        with torch.no_grad():
            return stack.llm(stack.llm.embed_tokens(ids), batch).logits

    adapted = logits()
    # eval mode runs the adapters too (nn.TransformerEncoderLayer's fused path would skip them)
    torch.testing.assert_close(adapted, logits(train=True))
    merged = merged_state_dict(stack.llm)  # the model keeps its adapters
    assert merged.keys() == plain.keys() and lora_parameter_names(stack)
    assert merge_lora(stack) == 2 * stack.llm.num_layers and not lora_parameter_names(stack)
    torch.testing.assert_close(logits(), adapted, rtol=1e-5, atol=1e-5)
    assert all(torch.equal(merged[k], v) for k, v in stack.llm.state_dict().items())
    # unload drops the adapters: the base model's outputs again
    fresh = compose(llm="tiny-llm", vision="tiny-vision")
    base = fresh.llm(fresh.llm.embed_tokens(ids), batch).logits.detach()
    apply_lora(fresh, OmegaConf.create({"r": 2, "alpha": 4.0, "dropout": 0.0, "components": ["llm"],
                                        "target_modules": ["linear1"]}))
    assert unload_lora(fresh) == fresh.llm.num_layers
    torch.testing.assert_close(fresh.llm(fresh.llm.embed_tokens(ids), batch).logits, base)


def test_preflight_names_a_missing_adapter(tiny_components, pairs_dir, tmp_path):
    from mpm_framework.training.preflight import preflight

    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=[
        f"run.output_dir={tmp_path}/run", f"data.train=[{{path: {pairs_dir / 'pairs.jsonl'}}}]",
        f"run.lora.adapter_path={tmp_path}/no-adapter"])
    with pytest.raises(ConfigError, match=r"run\.lora\.adapter_path: no PEFT adapter in .*no-adapter"):
        preflight(cfg, ["align"])
