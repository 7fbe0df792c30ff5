"""``mpm export RUN --format llava-hf``: the folder loads with
``LlavaForConditionalGeneration.from_pretrained`` and
``AutoProcessor.from_pretrained``; logits equal within 1e-5 and greedy
generation equal; refusals name the reason; LoRA runs export merged or as a
PEFT adapter; sharded safetensors with an index; a model card."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from test_llava_import import assert_same_as_transformers, import_run, prompt_batch


def export(run, out, *extra):
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "llava-hf", "--out", str(out), *extra])
    return result


def load_export(out):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(str(out)).eval(), AutoProcessor.from_pretrained(str(out))


@pytest.mark.parametrize("vision,strategy", [("clip", "default"), ("siglip", "full")])
def test_export_loads_in_transformers_with_equal_logits_and_greedy(interop, tmp_path, vision, strategy):
    stack, _, run = import_run(tmp_path, vision=vision, strategy=strategy)
    out = tmp_path / "export"
    result = export(run, out)
    assert result.exit_code == 0, result.output
    model, processor = load_export(out)
    assert model.config.image_token_index == stack.llm.image_token_id
    assert model.config.vision_feature_layer == -1  # the kept layers' last state = the run's feature layer
    assert model.config.vision_config.num_hidden_layers == 2
    batch = prompt_batch(stack)
    assert_same_as_transformers(stack, model, batch)

    # the processor: chat template in the stack's prompt format, image token expanded to the slots
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    image = Image.new("RGB", (50, 40), (200, 30, 30))
    inputs = processor(text=text, images=image, return_tensors="pt", add_special_tokens=False)
    assert inputs["input_ids"][0].tolist() == batch["input_ids"][0].tolist()
    pixels = stack.image_transform()(image)
    torch.testing.assert_close(inputs["pixel_values"][0], pixels, rtol=0, atol=2e-2)
    with torch.no_grad():  # the whole path from the processor's output agrees too
        batch["pixel_values"] = inputs["pixel_values"]
        ours = stack.llm(stack.embed(batch), batch).logits
        theirs = model(**inputs).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_export_shards_like_transformers_and_writes_a_model_card(interop, tmp_path):
    from huggingface_hub import ModelCard

    stack, _, run = import_run(tmp_path)
    (run / "eval").mkdir()
    (run / "eval" / "caption.json").write_text(json.dumps(
        {"task": "caption", "languages": {"de": {"metrics": {"cider": 0.41, "bleu": 0.12}, "dataset": {}}}}))
    out = tmp_path / "sharded"
    result = export(run, out, "--max-shard-size", "100KB")
    assert result.exit_code == 0, result.output
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted({f for f in index["weight_map"].values()})
    assert len(shards) > 2 and all(f.startswith("model-0000") and f.endswith(".safetensors") for f in shards)
    assert all((out / f).is_file() for f in shards) and not (out / "model.safetensors").exists()
    model, _ = load_export(out)
    assert_same_as_transformers(stack, model, prompt_batch(stack), new_tokens=3)
    card = ModelCard.load(str(out / "README.md"))
    assert card.data.language == ["en"] and card.data.library_name == "transformers"
    assert card.data.base_model == ["llava"]  # the imported folder's name
    text = (out / "README.md").read_text()
    assert "| caption | de | cider | 0.41 |" in text and "arXiv:2308.12038" in text
    assert "| import | 0 |" in text


def _lora_run(tmp_path):
    """An imported Llava plus run.lora on the LLM with trained (non-zero) adapters."""
    from mpm_interop.run_folder import write_run
    from omegaconf import OmegaConf

    from mpm_framework.training.lora import apply_lora
    from mpm_framework.training.run_dir import load_run

    stack, _, run = import_run(tmp_path)
    cfg = OmegaConf.to_container(stack.config.model, resolve=True)
    lora = {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "components": ["llm"]}
    apply_lora(stack, OmegaConf.create(lora))
    g = torch.Generator().manual_seed(5)
    weights = {}
    with torch.no_grad():
        for name, p in stack.named_parameters():
            if ".lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
                weights[name] = p.detach().clone()
    weights.update({k: v for k, v in stack.state_dict().items() if k.startswith("connector.")})
    lora_dir = tmp_path / "lora_run"
    lora_dir.mkdir()
    (lora_dir / "import").mkdir()
    write_run(lora_dir, cfg, weights, str(run), "test", sections={"run": {"lora": lora}})
    return load_run(lora_dir), lora_dir


def test_lora_run_exports_merged_or_as_peft_adapter(interop, tmp_path):
    from peft import PeftModel

    stack, run = _lora_run(tmp_path)
    assert any(".lora_" in n for n, _ in stack.named_parameters())
    batch = prompt_batch(stack)
    merged = tmp_path / "merged"
    assert export(run, merged).exit_code == 0
    model, _ = load_export(merged)
    assert not any("lora" in k for k in model.state_dict())
    assert_same_as_transformers(stack, model, batch, new_tokens=4)

    with_adapter = tmp_path / "adapter_export"
    result = export(run, with_adapter, "--adapter")
    assert result.exit_code == 0, result.output
    assert (with_adapter / "adapter" / "adapter_config.json").is_file()
    base, _ = load_export(with_adapter)
    with torch.no_grad():
        base_logits = base(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"]).logits
        ours = stack.llm(stack.embed(batch), batch).logits
    assert not torch.allclose(base_logits, ours, atol=1e-3)  # the base alone lacks the adapter
    peft = PeftModel.from_pretrained(base, str(with_adapter / "adapter")).eval()
    with torch.no_grad():
        theirs = peft(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"]).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_stacks_llava_cannot_express_are_refused(interop, tmp_path, vocab_file):
    from mpm_interop.run_folder import prepare_out, write_run

    def run_of(name, model):
        out = tmp_path / name
        prepare_out(out)
        write_run(out, model, {}, "test", "test")
        return out

    viscpm = run_of("viscpm", {"llm": {"name": "cpm-bee", "size": "tiny", "vocab": str(vocab_file), "arch": {"num_layers": 1}},
                               "vision": {"name": "beit3", "preset": "tiny", "num_queries": 4},
                               "connector": {"name": "identity"}})
    result = export(viscpm, tmp_path / "x")
    assert result.exit_code != 0
    assert "cpm-bee" in result.output and "beit3" in result.output and "identity" in result.output
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    resampler = run_of("resampler", {"llm": {"name": "llama"}, "vision": {"name": "clip"},
                                     "connector": {"name": "resampler", "num_heads": 4}})
    result = export(resampler, tmp_path / "y")
    assert result.exit_code != 0 and "'resampler' is not mlp2x_gelu" in result.output
    linear = run_of("linear", {"llm": {"name": "llama"}, "vision": {"name": "clip"}, "connector": {"name": "linear"}})
    result = export(linear, tmp_path / "z")
    assert result.exit_code != 0 and "'linear' is not mlp2x_gelu" in result.output
    no_lora = export(resampler, tmp_path / "w", "--adapter")
    assert no_lora.exit_code != 0


def test_run_saved_with_the_llm_plugins_own_lora_loads_as_run_lora_and_exports(interop, tmp_path):
    """A run folder written while the llama plugin had its own LoRA switch
    (``model.llm.lora`` in its config.yaml) loads with that adapter as run.lora
    (peft injects the same layers, so the saved weights keep their names) and
    exports merged and as a PEFT adapter."""
    import yaml

    from mpm_framework.training.lora import lora_parameter_names
    from mpm_framework.training.run_dir import load_run

    stack, run = _lora_run(tmp_path)
    config = run / "import" / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    lora = saved["run"].pop("lora")
    saved["model"]["llm"]["lora"] = {"enabled": True, "r": lora["r"], "alpha": lora["alpha"],
                                     "dropout": lora["dropout"], "target_modules": lora["target_modules"],
                                     "adapter_path": ""}
    config.write_text(yaml.safe_dump(saved))
    loaded = load_run(run)
    assert sorted(lora_parameter_names(loaded)) == sorted(lora_parameter_names(stack)) != []
    assert loaded.config.run.lora.r == lora["r"] and "lora" not in loaded.config.model.llm
    theirs = dict(stack.named_parameters())
    for name, p in loaded.named_parameters():
        assert torch.equal(p, theirs[name]), name
    batch = prompt_batch(loaded)
    result = export(run, tmp_path / "merged")
    assert result.exit_code == 0, result.output
    model, _ = load_export(tmp_path / "merged")
    assert_same_as_transformers(loaded, model, batch, new_tokens=4)
    assert export(run, tmp_path / "adapter_export", "--adapter").exit_code == 0
