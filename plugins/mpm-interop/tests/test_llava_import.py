"""``mpm import llava-hf``: a tiny Llava saved with ``save_pretrained`` gives
the same logits (1e-5) and greedy answers through the MPM stack as through
transformers, before any training; then an instruct step in German runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mpm_framework.cli.main import cli

sys.path.insert(0, str(Path(__file__).parent))
from llava_fixtures import IMAGE, save_tiny_llava


def import_run(tmp_path, **kw):
    from mpm_framework.training.run_dir import load_run

    src, model = save_tiny_llava(tmp_path / "llava", **kw)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["import", "llava-hf", str(src), "--out", str(run)])
    assert result.exit_code == 0, result.output
    return load_run(run), model, run


def prompt_batch(stack, question="<image>\nWhat is in the picture?"):
    from mpm_framework.contracts.prompt import Turn

    enc = stack.encode_conversation([Turn("user", question)], add_generation_prompt=True)
    batch = stack.llm.collate([enc], padding_side="left")
    batch["pixel_values"] = torch.randn(1, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(3))
    return batch


def assert_same_as_transformers(stack, model, batch, new_tokens=6):
    from mpm_framework.inference.generation import GenerationConfig, generate

    with torch.no_grad():
        ours = stack.llm(stack.embed(batch), batch).logits  # no labels: every position's logits
        theirs = model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"],
                       attention_mask=batch["attention_mask"]).logits
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        greedy = generate(stack.llm, stack.embed(batch), batch, GenerationConfig(max_new_tokens=new_tokens))[0]
        hf = model.generate(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"],
                            attention_mask=batch["attention_mask"], max_new_tokens=new_tokens, do_sample=False,
                            eos_token_id=stack.llm.stop_token_ids, pad_token_id=stack.llm.pad_token_id)
    hf_new = hf[0, batch["input_ids"].shape[1]:].tolist()
    hf_new = [t for t in hf_new if t not in stack.llm.stop_token_ids][: len(hf_new)]
    assert greedy == hf_new[: len(greedy)] and len(greedy) > 0


@pytest.mark.parametrize("vision,strategy", [("clip", "default"), ("clip", "full"), ("siglip", "full")])
def test_imported_llava_matches_transformers(interop, tmp_path, vision, strategy):
    stack, model, _ = import_run(tmp_path, vision=vision, strategy=strategy)
    cfg = stack.config.model
    assert cfg.vision.name == vision and cfg.vision.feature_layer == -2
    assert cfg.vision.keep_cls == (strategy == "full" and vision == "clip")
    assert stack.num_image_tokens == 16 + int(cfg.vision.keep_cls)
    assert cfg.llm.image_token == "<image>" and stack.llm.image_token_id == model.config.image_token_index
    batch = prompt_batch(stack)
    assert int(batch["image_mask"].sum()) == stack.num_image_tokens
    assert_same_as_transformers(stack, model, batch)


def test_llava_15_prompt_format_and_german_instruct_step(interop, tmp_path):
    from mpm_framework.contracts.prompt import Turn

    stack, _, _ = import_run(tmp_path)
    text = stack.llm.tokenizer.decode(prompt_batch(stack)["input_ids"][0])
    assert text.startswith("USER: <image>") and text.rstrip().endswith("ASSISTANT:")
    stack.train()
    stack.set_trainable(["connector", "llm"])
    enc = stack.encode_conversation([Turn("user", "<image>\nWas ist auf dem Bild?"),
                                     Turn("assistant", "Ein roter Kreis auf weißem Grund.")])
    batch = stack.llm.collate([enc])
    batch["pixel_values"] = torch.randn(1, 3, IMAGE, IMAGE)
    params = [p for p in stack.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    out = stack(batch)
    assert out.num_label_tokens > 5 and torch.isfinite(out.loss)
    out.loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, params))


def test_llava_refusals(interop, tmp_path):
    from mpm_interop.llava_hf import check_expressible
    from transformers import LlavaConfig

    from mpm_framework.errors import MPMError

    src, _ = save_tiny_llava(tmp_path / "llava")
    config = LlavaConfig.from_pretrained(str(src))
    config.projector_hidden_act = "relu"
    with pytest.raises(MPMError, match="GELU"):
        check_expressible(config)
    config.projector_hidden_act, config.vision_feature_layer = "gelu", [-2, -5]
    with pytest.raises(MPMError, match="feature layers"):
        check_expressible(config)
    bad = CliRunner().invoke(cli, ["import", "llava-hf", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")])
    assert bad.exit_code != 0


def test_instruct_stage_in_german_starts_from_the_imported_run(interop, tmp_path, capsys):
    """The real trainer: an instruct stage whose ``run.init_from`` is the import
    (the connector comes from its final weights, the components from its
    folders), one German LLaVA-format conversation, one step."""
    import json

    from omegaconf import OmegaConf
    from PIL import Image

    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.training.trainer import train_stage

    stack, _, run = import_run(tmp_path)
    Image.new("RGB", (40, 40), (220, 20, 20)).save(tmp_path / "rot.png")
    record = {"image": "rot.png", "conversations": [
        {"from": "human", "value": "<image>\nWelche Farbe hat die Form?"},
        {"from": "gpt", "value": "Die Form ist rot."}]}
    (tmp_path / "de.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    model = OmegaConf.to_container(stack.config.model, resolve=True)
    model["languages"] = ["en", "de"]
    cfg = resolve_config(recipe={
        "model": model,
        "data": {"train": [{"path": str(tmp_path / "de.jsonl"), "kind": "instruct", "lang": "de"}]},
        "run": {"stage": "instruct", "init_from": str(run), "output_dir": str(tmp_path / "de_run"),
                "max_steps": 1, "batch_size": 1, "save_every": 0, "log_every": 1},
    })
    result = train_stage(build_stack(cfg), cfg, progress=False)
    assert result.steps == 1 and result.final_loss is not None and result.final_loss == result.final_loss
    assert f"initialised 4 tensors from {run}" in capsys.readouterr().out  # the imported connector
    assert (tmp_path / "de_run" / "instruct" / "final" / "model.safetensors").is_file()
