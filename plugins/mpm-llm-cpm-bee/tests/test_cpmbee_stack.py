"""cpm-bee through the framework: registry, config, CLI, ChatStack training and generation."""

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from mpm_llm_cpm_bee.cli import cpm_bee
from mpm_llm_cpm_bee.pivot import CPMBeeLLM
from mpm_llm_cpm_bee.testing import save_official

from mpm_framework.composition import compose
from mpm_framework.contracts.prompt import Turn
from mpm_framework.plugins import get_registry

TURNS = [Turn("user", "<image>\nWhat colour is the shape?"), Turn("assistant", "红色的圆形 (a red circle).")]


def test_registered_with_aliases(cpm_bee_plugin):
    registry = get_registry()
    for name in ("cpm-bee", "cpm_bee", "cpmbee"):
        assert registry.get("llm", name).name == "cpm-bee"
    assert registry.get("llm", "cpm-bee").load_factory() is CPMBeeLLM


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_compose_show_config(cpm_bee_plugin, tiny_components, lang):
    from mpm_framework.cli.main import cli

    if lang not in get_registry().names("language"):
        pytest.skip(f"language pack '{lang}' is not installed")
    result = CliRunner().invoke(cli, ["compose", "--llm", "cpm-bee", "--vision", "tiny-vision", "--lang", lang,
                                      "model.llm.size=tiny", "model.llm.dtype=bf16", "show-config"])
    assert result.exit_code == 0, result.output
    assert "name: cpm-bee" in result.output and "dtype: bf16" in result.output and "size: tiny" in result.output
    bad = CliRunner().invoke(cli, ["compose", "--llm", "cpm-bee", "model.llm.sise=10b", "show-config"])
    assert bad.exit_code == 1 and "Did you mean 'model.llm.size'?" in bad.output


def test_train_step_and_generation_through_the_chat_stack(cpm_bee_plugin, tiny_components):
    stack = compose(llm="cpm-bee", vision="tiny-vision", overrides=["model.llm.size=tiny", "model.llm.arch.num_layers=1"])
    assert isinstance(stack.llm, CPMBeeLLM) and stack.llm.num_layers == 1
    counts = stack.set_trainable(["connector", "llm.layers"])
    assert counts["vision"][0] == 0 and counts["connector"][0] > 0
    enc = stack.encode_conversation(TURNS)
    assert enc.num_image_slots == stack.num_image_tokens == 16
    batch = stack.llm.collate([enc, enc])
    batch["pixel_values"] = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    params = [p for p in stack.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    losses = []
    for step in range(6):
        out = stack(batch)
        out.loss.backward()
        if step == 0:
            connector_grad = sum(float(p.grad.abs().sum()) for p in stack.connector.parameters())
            assert connector_grad > 0  # the loss reaches the image features through the LLM
            assert stack.llm.input_embedding.weight.grad is None
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < losses[0]

    # Greedy generation over the contract (prefill / decode), image features included.
    prompt = stack.encode_conversation(TURNS[:1], add_generation_prompt=True)
    gen = stack.llm.collate([prompt], padding_side="left")
    gen["pixel_values"] = batch["pixel_values"][:1]
    with torch.no_grad():
        logits, state = stack.llm.prefill(stack.embed(gen), gen)
        tokens = []
        for _ in range(5):
            token = logits.argmax(-1)
            tokens.append(int(token))
            if tokens[-1] == stack.llm.eos_token_id:
                break
            logits, state = stack.llm.decode(token, state)
    assert isinstance(stack.llm.decode_text(tokens), str) and tokens


def test_plan_on_meta_device(cpm_bee_plugin, tiny_components):
    stack = compose(llm="cpm-bee", vision="tiny-vision", overrides=["model.llm.size=10b"], meta=True)
    n = sum(p.numel() for p in stack.llm.parameters())
    from mpm_llm_cpm_bee.sizing import parameter_count

    assert n == parameter_count(stack.llm.arch)["total"] > 9e9
    assert next(stack.llm.parameters()).device.type == "meta"


def test_convert_command(tmp_path, tiny, vocab_file):
    src = tmp_path / "viscpm.pt"
    save_official(tiny, src, prefix="llm.")
    result = CliRunner().invoke(cpm_bee, ["convert", str(src), str(tmp_path / "out"), "--vocab", str(vocab_file),
                                          "--dtype", "fp16"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()
    info = CliRunner().invoke(cpm_bee, ["inspect", str(tmp_path / "out")])
    assert '"dim_model": 64' in info.output and '"num_layers": 2' in info.output
    missing = CliRunner().invoke(cpm_bee, ["convert", str(tmp_path / "nope.pt"), str(tmp_path / "x")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_cli_commands_are_registered_and_the_plugin_is_torch_free(tmp_path):
    env = {**os.environ, "MPM_PLUGINS": "mpm_llm_cpm_bee.plugin"}
    sizes = subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", "cpm-bee", "sizes"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert sizes.returncode == 0, sizes.stderr
    assert "10b" in sizes.stdout and "9.616B" in sizes.stdout
    code = ("import sys, mpm_llm_cpm_bee.plugin, mpm_llm_cpm_bee.config, mpm_llm_cpm_bee.tokenizer, "
            "mpm_llm_cpm_bee.structured, mpm_llm_cpm_bee.sizing, mpm_llm_cpm_bee.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_core_decoding_loop_greedy_beam_and_multi_turn_chat(cpm_bee_plugin, tiny_components):
    from PIL import Image

    from mpm_framework.inference.generation import GenerationConfig, generate

    stack = compose(llm="cpm-bee", vision="tiny-vision", overrides=["model.llm.size=tiny", "model.llm.arch.num_layers=1"]).eval()
    llm = stack.llm
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    prompt = stack.encode_conversation(TURNS[:1], add_generation_prompt=True)
    batch = llm.collate([prompt], padding_side="left")
    batch["pixel_values"] = stack.image_transform()(image)[None]
    with torch.no_grad():
        embeds = stack.embed(batch)
        manual, (logits, state) = [], llm.prefill(embeds, batch)
        for _ in range(4):
            manual.append(int(logits.argmax(-1)))
            logits, state = llm.decode(logits.argmax(-1), state)
    greedy = generate(llm, embeds, batch, GenerationConfig(max_new_tokens=4))[0]
    assert greedy == manual[: len(greedy)] and greedy
    # VisCPM's decoding: beam 3, repetition penalty 1.1.
    beams = generate(llm, embeds, batch, GenerationConfig(max_new_tokens=4, num_beams=3, repetition_penalty=1.1))
    assert len(beams) == 1 and all(0 <= t < llm.vocab_size and t != llm.tokenizer.unk_id for t in beams[0])
    answer, history = stack.chat(image, "What colour is the shape?", max_new_tokens=3)
    again, history = stack.chat(None, "And the size?", history=history, max_new_tokens=3, num_beams=2)
    assert isinstance(answer, str) and isinstance(again, str) and len(history.turns) == 4
    data = llm.conversation_dict(history.turns[:3], stack.num_image_tokens, add_generation_prompt=True)
    assert data["context"].startswith("User: What colour is the shape?\nAI: ") and data["question"] == "And the size?"


def test_viscpm_composition_with_beit3(cpm_bee_plugin):
    """VisCPM-Chat's shape: BEiT-3 with query tokens and mapping -> CPM-Bee; the
    stack's state dict holds the LLM under ``llm.`` with the official names, as
    VisCPM checkpoints do."""
    if "beit3" not in get_registry().names("vision"):
        pytest.skip("the mpm-vision-beit3 plugin is not installed")
    stack = compose(llm="cpm-bee", vision="beit3", connector="identity",
                    overrides=["model.vision.preset=tiny", "model.llm.size=tiny", "model.llm.arch.num_layers=1"])
    enc = stack.encode_conversation([Turn("user", "<image>\n这是什么颜色？"), Turn("assistant", "红色。")])
    batch = stack.llm.collate([enc])
    size = stack.vision.image_size
    batch["pixel_values"] = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = stack(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.num_label_tokens == 4  # 红 色 。 </s>
    assert enc.num_image_slots == stack.num_image_tokens
    keys = stack.state_dict().keys()
    assert "llm.input_embedding.weight" in keys and "llm.encoder.output_layernorm.weight" in keys
