"""``--checkpoint RUN_DIR``: chat and eval load a trained run from its own folder
(resolved config + weights), without the training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli

pytest.importorskip("mpm_framework.training.run_dir")


@pytest.fixture
def run_dir(tiny_components, tmp_path):
    """A run folder as the trainer writes it (run.json, <stage>/config.yaml,
    <stage>/final/model.safetensors), whose training data no longer exists."""
    from safetensors.torch import save_file

    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config, save_config

    cfg = resolve_config(recipe={"model": {"llm": "tiny-llm", "vision": "tiny-vision"},
                                 "data": {"train": [{"path": str(tmp_path / "deleted" / "pairs.jsonl")}]},
                                 "run": {"stage": "instruct"}})
    stack = build_stack(cfg)
    generator = torch.Generator().manual_seed(5)
    trained = {name: torch.randn(p.shape, generator=generator) * 0.5
               for name, p in stack.named_parameters() if name.startswith("connector.")}
    run = tmp_path / "run"
    (run / "instruct" / "final").mkdir(parents=True)
    save_config(cfg, run / "instruct" / "config.yaml")
    save_file(trained, str(run / "instruct" / "final" / "model.safetensors"))
    (run / "run.json").write_text(json.dumps({"stages": [{"stage": "instruct"}]}))
    with torch.no_grad():
        for name, p in stack.named_parameters():
            if name in trained:
                p.copy_(trained[name])
    return run, stack


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_chat_from_a_run_folder(run_dir, image):
    run, trained_stack = run_dir
    expected, _ = trained_stack.chat(image, "What is this?", max_new_tokens=8)
    result = CliRunner().invoke(cli, ["compose", "chat", "--checkpoint", str(run), "--image", image,
                                      "What is this?", "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    assert result.output == expected + "\n"
    from mpm_framework.composition import compose

    untrained, _ = compose(llm="tiny-llm", vision="tiny-vision").chat(image, "What is this?", max_new_tokens=8)
    assert untrained != expected  # the run's weights, not the components' initial ones, answered


def test_eval_from_a_run_folder_writes_into_it(run_dir, tmp_path):
    run, _ = run_dir
    data = tmp_path / "questions.jsonl"
    data.write_text(json.dumps({"question": "Hello?", "answer": "hi"}) + "\n")
    result = CliRunner().invoke(cli, ["compose", "eval", "--checkpoint", str(run), "--task", "vqa",
                                      "--data", str(data), "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval" / "vqa.json").read_text())
    assert report["model"]["checkpoint"] == str(run) and report["languages"]["en"]["dataset"]["examples"] == 1
