"""A trained run loaded for inference at another dtype or quantised (issue 21):
``load_stack(run, quantize={"llm": "int8"})``, ``dtype={...}`` or the same as
``model.<component>.dtype|quantize`` overrides (``mpm compose ... chat
--checkpoint RUN model.llm.quantize=int8``). The run is trained by the real
trainer (llama + clip, LoRA on the LLM): int8 layers get the trained weights
with the adapters merged in, the LM head stays float, and the answers stay
within the tolerance of the llama plugin's int8 parity test; any other key
on a trained run is refused naming the keys that may be set."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mpm_framework.errors import ConfigError

#: The llama plugin's int8 parity bounds (plugins/mpm-llm-llama/tests/test_llama_quantize.py).
TOLERANCE = {"cosine_mean": 0.995, "cosine_min": 0.99, "argmax": 0.90, "greedy": 0.5}
COLORS = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder written by the trainer: 2 steps of instruct on 8 pairs, LoRA r=4
    on the LLM's q/v projections (so the trained weights are the connector and the adapters)."""
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.training import train_stage

    folder = tmp_path_factory.mktemp("trained")
    records = []
    for i in range(8):
        Image.new("RGB", (36, 36), COLORS[i % 4]).save(folder / f"img{i}.png")
        records.append({"image": f"img{i}.png", "text": f"a {COLORS[i % 4]} square number {i}", "lang": "en"})
    (folder / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    cfg = resolve_config(recipe={
        "model": {"llm": "llama", "vision": "clip", "connector": "mlp2x_gelu"},
        "data": {"train": [{"path": str(folder / "pairs.jsonl")}], "max_length": 128},
        "run": {"stage": "instruct", "output_dir": str(folder / "run"), "max_steps": 2, "batch_size": 4,
                "save_every": 0, "progress": False, "lr": 1e-2,
                "lora": {"r": 4, "alpha": 8.0, "target_modules": ["q_proj", "v_proj"]}}})
    train_stage(build_stack(cfg), cfg, progress=False)
    return folder / "run", folder / "img0.png"


def _parity(fp32, int8, ids, new_tokens=12) -> dict[str, float]:
    """As the llama plugin's parity test: logits cosine, argmax and greedy token agreement."""
    with torch.no_grad():
        a, b = fp32.llm.hf(ids).logits, int8.llm.hf(ids).logits
        cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        ga, gb = fp32.llm.hf.generate(ids[:, :8], **kwargs), int8.llm.hf.generate(ids[:, :8], **kwargs)
    return {"cosine_mean": cos.mean().item(), "cosine_min": cos.min().item(),
            "argmax": (a.argmax(-1) == b.argmax(-1)).float().mean().item(),
            "greedy": (ga[:, 8:] == gb[:, 8:]).float().mean().item()}


def test_int8_load_quantises_the_trained_weights(trained_run):
    from mpm_framework.composition import load_stack
    from mpm_framework.quantize import is_quantized
    from mpm_framework.training.lora import lora_parameter_names

    run, image = trained_run
    fp32 = load_stack(run)
    int8 = load_stack(run, overrides=["model.llm.quantize=int8", "model.vision.quantize=int8"])
    assert lora_parameter_names(fp32) and not lora_parameter_names(int8)  # merged before quantising
    layer = int8.llm.hf.model.layers[0]
    assert is_quantized(layer.self_attn.q_proj) and is_quantized(layer.mlp.down_proj) and is_quantized(int8.vision)
    assert isinstance(int8.llm.hf.lm_head, torch.nn.Linear) and not is_quantized(int8.llm.hf.lm_head)
    assert not is_quantized(int8.connector)
    assert int8.config.model.llm.quantize == "int8" and fp32.config.model.llm.quantize == "none"
    for name, p in fp32.connector.named_parameters():  # the trained connector, not a fresh one
        assert torch.equal(p, dict(int8.connector.named_parameters())[name])
    ids = torch.randint(3, fp32.llm.vocab_size, (4, 24), generator=torch.Generator().manual_seed(0))
    result = _parity(fp32, int8, ids)
    print("int8 parity after loading the run", result)
    for key, bound in TOLERANCE.items():
        assert result[key] >= bound, (key, result)
    pixels = torch.rand(1, 3, fp32.vision.image_size, fp32.vision.image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = fp32.encode_images(pixels), int8.encode_images(pixels)
    assert torch.nn.functional.cosine_similarity(want.flatten(), got.flatten(), dim=0) > 0.98
    assert int8.chat(str(image), "What is this?", max_new_tokens=6)[0] == fp32.chat(str(image), "What is this?",
                                                                                      max_new_tokens=6)[0]


def test_bf16_load_has_bf16_parameters(trained_run):
    from mpm_framework.composition import load_stack

    run, image = trained_run
    stack = load_stack(run, dtype={"llm": "bf16", "vision": "bf16"})
    for name, p in [*stack.llm.named_parameters(), *stack.vision.named_parameters()]:
        assert p.dtype == torch.bfloat16, name
    assert stack.config.model.llm.dtype == "bf16"
    assert isinstance(stack.chat(str(image), "What is this?", max_new_tokens=4)[0], str)


def test_other_keys_on_a_trained_run_name_the_allowed_ones(trained_run):
    from mpm_framework.composition import load_stack

    run, _ = trained_run
    allowed = r"model\.llm\.dtype, model\.llm\.quantize, model\.vision\.dtype, model\.vision\.quantize"
    with pytest.raises(ConfigError, match=rf"'model\.llm\.tiny\.num_layers=3' cannot be set.*{allowed}"):
        load_stack(run, overrides=["model.llm.tiny.num_layers=3"])
    with pytest.raises(ConfigError, match=rf"'model\.connector\.dtype' cannot be set.*{allowed}"):
        load_stack(run, dtype={"connector": "bf16"})
    with pytest.raises(ConfigError, match=r"model\.llm\.quantize.*int4.*int8"):
        load_stack(run, overrides=["model.llm.quantize=int4"])
    with pytest.raises(ConfigError, match=r"model\.llm\.dtype.*Allowed: fp32, bf16, fp16"):
        load_stack(run, overrides=["model.llm.dtype=fp64"])
    with pytest.raises(ConfigError, match=r"model\.llm\.quantize=int8 needs model\.llm\.dtype=fp32, not bf16"):
        load_stack(run, overrides=["model.llm.quantize=int8", "model.llm.dtype=bf16"])


def test_component_without_quantisation_says_so():
    from mpm_framework.contracts.base import Component

    assert Component().quantize_weights("none") == 0
    with pytest.raises(ConfigError, match="Component does not support quantisation"):
        Component().quantize_weights("int8")


def test_cli_chat_with_a_trained_run_at_int8(trained_run):
    from mpm_framework.cli.main import cli
    from mpm_framework.composition import load_stack

    run, image = trained_run
    expected, _ = load_stack(run, quantize={"llm": "int8"}).chat(str(image), "What is this?", max_new_tokens=6)
    args = ["chat", "--checkpoint", str(run), "--image", str(image), "What is this?", "--max-new-tokens", "6"]
    result = CliRunner().invoke(cli, ["compose", "model.llm.quantize=int8", *args])
    assert result.exit_code == 0, result.output
    assert result.output == expected + "\n"
    result = CliRunner().invoke(cli, ["compose", "run.lr=1e-5", *args])
    assert result.exit_code != 0
    assert "'run.lr=1e-5' cannot be set" in result.output and "model.llm.quantize" in result.output
    assert "Traceback" not in result.output


def test_serve_loads_a_trained_run_with_its_inference_settings(trained_run):
    from mpm_framework.cli.compose_cmd import ComposeSpec
    from mpm_framework.inference.run_overrides import split_for_runs
    from mpm_framework.quantize import is_quantized
    from mpm_framework.serving.service import load_stacks

    run, _ = trained_run
    chat, paint = load_stacks([run], ComposeSpec(overrides=["model.llm.quantize=int8", "model.vision.dtype=bf16"]))
    assert paint is None and is_quantized(chat.llm) and not is_quantized(chat.vision)
    assert {p.dtype for p in chat.vision.parameters()} == {torch.bfloat16}
    with pytest.raises(ConfigError, match=r"'model\.decoder\.dtype' cannot be set"):
        load_stacks([run], ComposeSpec(overrides=["model.decoder.dtype=fp16"]))
    # two runs (a chat and a text-only one): each override goes to the runs that have its key,
    # one that no run has to all (whose loading refuses it)
    import shutil

    import yaml

    text_run = run.parent / "text_run"
    shutil.copytree(run, text_run, dirs_exist_ok=True)
    config = next(text_run.glob("*/config.yaml"))
    saved = yaml.safe_load(config.read_text())
    saved["model"]["vision"] = saved["model"]["connector"] = None
    config.write_text(yaml.safe_dump(saved))
    overrides = ["model.vision.dtype=bf16", "model.llm.quantize=int8", "run.lr=1"]
    assert split_for_runs([run, text_run], overrides) == [overrides, ["model.llm.quantize=int8", "run.lr=1"]]


@pytest.mark.parametrize("kind,name,options", [
    ("llm", "llama", {}), ("llm", "hf-causal-lm", {}), ("llm", "cpm-bee", {"size": "tiny"}),
    ("vision", "clip", {}), ("vision", "siglip", {}), ("vision", "beit3", {"preset": "tiny"})])
def test_quantize_weights_after_build_equals_build_time_int8(kind, name, options):
    """Each plugin's quantize_weights is the code its from_config runs for quantize=int8:
    a float build quantised afterwards computes exactly what the int8 build does."""
    from mpm_framework.composition import build_component
    from mpm_framework.contracts.base import BuildContext
    from mpm_framework.contracts.prompt import Turn

    context = BuildContext(llm_hidden_size=64)
    after = build_component(kind, name, options, context=context).eval()
    built = build_component(kind, name, {**options, "quantize": "int8"}, context=context).eval()
    assert after.quantize_weights("int8") > 0
    with torch.no_grad():
        if kind == "vision":
            size = after.image_size
            pixels = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
            want, got = built(pixels), after(pixels)
        else:
            batch = after.collate([after.format_prompt([Turn("user", "hello there"), Turn("assistant", "hi")])])
            want = built(built.embed_tokens(batch["input_ids"]), batch).logits
            got = after(after.embed_tokens(batch["input_ids"]), batch).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)
