"""The plugin as installed: registration, ``mpm plugins list``, and stacks composed
with the built-in connectors and a vision encoder that train and generate."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata

import pytest
import torch

from mpm_framework import compose
from mpm_framework.contracts.prompt import Turn
from mpm_framework.errors import ConfigError


@pytest.fixture
def llama_registered(mpm_plugin, tiny_components):
    """``llama`` and ``hf-causal-lm`` in the registry whether or not entry points were loaded."""
    import mpm_llm_llama.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_llm_llama")
    yield


def _batch(stack, n=2, padding_side="right", generation=False):
    questions = ["<image>\nWhat is in the image?", "<image>\n左边有什么?"][:n]
    convs = [[Turn("user", q)] + ([] if generation else [Turn("assistant", "a red circle")]) for q in questions]
    encodings = [stack.encode_conversation(c, add_generation_prompt=generation) for c in convs]
    batch = stack.llm.collate(encodings, padding_side=padding_side)
    batch["pixel_values"] = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return batch


@pytest.mark.parametrize("connector", ["linear", "mlp2x_gelu", "resampler"])
def test_stack_with_connectors_trains_and_generates(llama_registered, llama_dir, connector):
    stack = compose(llm="llama", vision="tiny-vision", connector=connector,
                    overrides=[f"model.llm.path={llama_dir}"])
    assert type(stack.llm).__name__ == "LlamaLLM"
    counts = stack.set_trainable(["connector"])
    assert counts["llm"][0] == 0 and counts["connector"][0] > 0
    batch = _batch(stack)
    assert int(batch["image_mask"].sum()) == 2 * stack.num_image_tokens
    out = stack(batch)
    out.loss.backward()
    assert all(p.grad is not None for p in stack.connector.parameters())
    assert all(p.grad is None for p in stack.llm.parameters())
    # the image reaches the loss through the placeholder slots
    shifted = dict(batch, pixel_values=batch["pixel_values"] + 1)
    with torch.no_grad():
        assert not torch.allclose(stack(shifted).loss, out.loss)

    # generation: left-padded prompts, image features scattered, KV-cache decoding
    stack.eval()
    prompt = _batch(stack, padding_side="left", generation=True)
    with torch.no_grad():
        embeds = stack.embed(prompt)
        logits, state = stack.llm.prefill(embeds, prompt)
        tokens = []
        for _ in range(4):
            tokens.append(logits.argmax(-1))
            logits, state = stack.llm.decode(tokens[-1], state)
    assert torch.stack(tokens, 1).shape == (2, 4)


def test_stack_generate_through_the_core_decoding_loop(llama_registered, llama_dir):
    if importlib.util.find_spec("mpm_framework.inference") is None:
        pytest.skip("mpm_framework.inference (the decoding loop) is not available")
    from PIL import Image

    stack = compose(llm="llama", vision="tiny-vision", overrides=[f"model.llm.path={llama_dir}"])
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    answers = stack.generate(images, ["What is this?", "Colour?"], max_new_tokens=5)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    beams = stack.generate(images[:1], ["What is this?"], max_new_tokens=5, num_beams=3)
    assert len(beams) == 1


def test_random_tiny_model_with_run_lora_from_overrides(llama_registered):
    from mpm_framework.training.lora import apply_lora

    stack = compose(llm="llama", vision="tiny-vision", overrides=[
        "model.llm.tiny.hidden_size=48", "model.llm.tiny.num_layers=1", "run.lora.r=2",
    ])
    assert stack.llm.hidden_size == 48 and stack.llm.num_layers == 1
    assert len(apply_lora(stack, stack.config.run.lora)) == 2 * 4  # A and B of q/k/v/o_proj
    counts = stack.set_trainable(["connector", "llm.lora"])
    assert 0 < counts["llm"][0] < counts["llm"][1]
    stack(_batch(stack)).loss.backward()
    assert all(p.grad is not None for n, p in stack.llm.named_parameters() if p.requires_grad)


def test_hf_causal_lm_builds_any_architecture_at_random(llama_registered):
    stack = compose(llm="hf", vision="tiny-vision", overrides=["model.llm.model_type=qwen2"])
    assert stack.config.model.llm.name == "hf-causal-lm"
    assert type(stack.llm.hf).__name__ == "Qwen2ForCausalLM"
    assert torch.isfinite(stack(_batch(stack)).loss)


def test_meta_build_loads_no_weights(llama_registered, llama_dir):
    stack = compose(llm="llama", vision="tiny-vision", overrides=[f"model.llm.path={llama_dir}"], meta=True)
    assert all(p.device.type == "meta" for p in stack.llm.parameters())


def test_config_typos_name_the_key(llama_registered):
    with pytest.raises(ConfigError, match=r"Did you mean 'model\.llm\.dtype'"):
        compose(llm="llama", vision="tiny-vision", overrides=["model.llm.dtyp=bf16"])
    with pytest.raises(ConfigError, match=r"Did you mean 'model\.llm\.tiny\.hidden_size'"):
        compose(llm="llama", vision="tiny-vision", overrides=["model.llm.tiny.hiden_size=4"])
    with pytest.raises(ConfigError, match=r"model.llm.lora was removed.*run.lora.r=16 run.lora.alpha=32"):
        compose(llm="llama", vision="tiny-vision", overrides=["model.llm.lora.enabled=true", "model.llm.lora.r=16",
                                                             "model.llm.lora.alpha=32"])


def test_registration_is_torch_free():
    code = "import sys, mpm_llm_llama.plugin, mpm_llm_llama.config\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_installed_plugin_appears_in_mpm_plugins_list():
    installed = [ep for ep in metadata.entry_points(group="mpm") if ep.name == "mpm_llm_llama"]
    if not installed:
        pytest.skip("mpm-llm-llama is not pip-installed in this environment")
    env = {k: v for k, v in os.environ.items() if k not in ("MPM_DISABLE_PLUGIN_AUTOLOAD", "MPM_PLUGINS")}
    out = subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", "plugins", "list", "--json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    row = next(r for r in listing["plugins"] if r["plugin"] == "mpm_llm_llama")
    assert row["distribution"] == "mpm-llm-llama"
    names = {(c["kind"], c["name"]) for c in row["components"]}
    assert names == {("llm", "llama"), ("llm", "hf-causal-lm")}
    assert not any(f["plugin"] == "mpm_llm_llama" for f in listing["failed"])


def test_lora_recipe_resolves_and_builds(llama_registered, llama_dir):
    from pathlib import Path

    import mpm_llm_llama

    from mpm_framework.training.lora import apply_lora

    recipe = Path(mpm_llm_llama.__file__).parent / "llama_lora.yaml"
    stack = compose(vision="tiny-vision", config=recipe,
                    overrides=[f"model.llm.path={llama_dir}", "model.llm.dtype=fp32"])
    lora = stack.config.run.lora
    assert (lora.r, lora.alpha, list(lora.components)) == (16, 32, ["llm"])
    assert stack.config.run.trainable == ["connector", "llm.lora"]
    assert len(apply_lora(stack, lora)) == 2 * 7 * stack.llm.num_layers  # A, B of 7 projections per layer
    counts = stack.set_trainable(list(stack.config.run.trainable))
    assert 0 < counts["llm"][0] < counts["llm"][1]
    stack(_batch(stack)).loss.backward()
