"""A run folder is data: its ``config.yaml`` cannot switch on code shipped with a
model. A tiny Hugging Face Llama folder whose ``config.json`` ``auto_map`` names a
``.py`` that writes a marker file, referenced from a run folder whose config says
``trust_remote_code: true``: chat, eval, train and the Python loaders never run it;
``--trust-remote-code`` on the command line (or ``trust_remote_code=True`` in
Python) runs it, with a warning naming the file."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli
from mpm_framework.security import (
    RemoteCodeWarning,
    allow_remote_code,
    ignore_remote_code_settings,
    remote_code_files,
    remote_code_trusted,
    trusting_remote_code,
)

pytest.importorskip("mpm_llm_llama")

SHIPPED_CODE = '''\
open({marker!r}, "w").write("shipped code ran")
from transformers import LlamaConfig, LlamaForCausalLM


class MarkedConfig(LlamaConfig):
    pass


class MarkedForCausalLM(LlamaForCausalLM):
    config_class = MarkedConfig
'''


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """One thread; transformers copies shipped code into a modules cache: keep it in tmp."""
    import transformers.dynamic_module_utils as dyn

    monkeypatch.setattr(dyn, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"), raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model_dir(tmp_path):
    """A random tiny Llama saved the real way, then given shipped code (auto_map) that
    writes ``marker`` when imported. Returns (folder, marker, the .py file)."""
    from mpm_llm_llama.toy import tiny_llama_config, train_tokenizer
    from transformers import LlamaForCausalLM

    folder = tmp_path / "llama-with-code"
    tok = train_tokenizer(["a red square", "a blue circle", "what is this?"] * 8, vocab_size=300)
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config(tok, hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2,
                                       max_position_embeddings=256)).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    marker = tmp_path / "shipped-code-ran"
    code = folder / "marked.py"
    code.write_text(SHIPPED_CODE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "marked.MarkedConfig", "AutoModelForCausalLM": "marked.MarkedForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker, code


@pytest.fixture
def run_dir(tiny_components, model_dir, tmp_path):
    """A run folder as the trainer writes it, over the model folder, whose config.yaml
    was edited to say model.llm.trust_remote_code: true."""
    from safetensors.torch import save_file

    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config, save_config

    folder, marker, code = model_dir
    cfg = resolve_config(recipe={"model": {"llm": {"name": "hf-causal-lm", "path": str(folder)},
                                           "vision": "tiny-vision"},
                                 "run": {"stage": "instruct"}})
    stack = build_stack(cfg)
    assert not marker.exists()
    trained = {n: p.detach().clone() for n, p in stack.named_parameters() if n.startswith("connector.")}
    run = tmp_path / "run"
    (run / "instruct" / "final").mkdir(parents=True)
    save_config(cfg, run / "instruct" / "config.yaml")
    save_file(trained, str(run / "instruct" / "final" / "model.safetensors"))
    (run / "run.json").write_text(json.dumps({"stages": [{"stage": "instruct"}]}))
    config_file = run / "instruct" / "config.yaml"
    tampered = yaml.safe_load(config_file.read_text())
    tampered["model"]["llm"]["trust_remote_code"] = True
    config_file.write_text(yaml.safe_dump(tampered))
    return run, marker, code, config_file


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "square.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(path)
    return str(path)


def _chat(run, image, *extra):
    return CliRunner().invoke(cli, ["compose", "chat", "--checkpoint", str(run), "--image", image, "What is this?",
                                    "--max-new-tokens", "2", "--no-stream", *extra])


def test_the_shipped_code_is_live(model_dir):
    """The fixture's payload runs when transformers is told to trust it (so the
    tests below can fail)."""
    from transformers import AutoConfig

    folder, marker, _ = model_dir
    AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    assert marker.is_file()


def test_python_loader_ignores_the_run_folders_trust_remote_code(run_dir):
    from mpm_framework.training import load_run

    run, marker, _, config_file = run_dir
    with pytest.warns(RemoteCodeWarning) as caught:
        stack = load_run(run)
    assert not marker.exists()
    assert any(str(config_file) in str(w.message) and "ignored" in str(w.message) for w in caught)
    assert type(stack.llm.hf).__name__ == "LlamaForCausalLM"  # the library's own class, not the shipped one


def test_chat_checkpoint_does_not_run_shipped_code(run_dir, image):
    run, marker, _, config_file = run_dir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _chat(run, image)
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert any(str(config_file) in str(w.message) for w in caught if w.category is RemoteCodeWarning)
    assert not remote_code_trusted()


@pytest.mark.parametrize("command", ["eval", "paint"])
def test_other_checkpoint_loaders_do_not_run_shipped_code(run_dir, tmp_path, command):
    run, marker, _, _ = run_dir
    if command == "eval":
        data = tmp_path / "questions.jsonl"
        data.write_text(json.dumps({"question": "What?", "answer": "a square"}) + "\n")
        args = ["eval", "--checkpoint", str(run), "--task", "vqa", "--data", str(data), "--max-new-tokens", "1"]
    else:
        args = ["paint", "--checkpoint", str(run), "a red square", "--out", str(tmp_path / "p.png")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RemoteCodeWarning)
        CliRunner().invoke(cli, ["compose", *args])  # paint refuses a chat stack: only loading matters here
    assert not marker.exists()


def test_the_command_line_flag_runs_it_and_names_the_file(run_dir, image):
    run, marker, code, _ = run_dir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _chat(run, image, "--trust-remote-code")
    assert result.exit_code == 0, result.output
    assert marker.is_file()
    messages = [str(w.message) for w in caught if w.category is RemoteCodeWarning]
    assert any("--trust-remote-code" in m and str(code) in m for m in messages), messages
    assert not remote_code_trusted()  # the grant ends with the command


def test_python_opt_in_runs_it_with_a_warning(run_dir):
    from mpm_framework.inference.loading import load_chat_stack

    run, marker, code, _ = run_dir
    with pytest.warns(RemoteCodeWarning, match=str(code)):
        stack = load_chat_stack(checkpoint=run, trust_remote_code=True)
    assert marker.is_file() and type(stack.llm.hf).__name__ == "MarkedForCausalLM"
    assert not remote_code_trusted()


def test_a_recipe_or_override_cannot_switch_it_on(tiny_components, model_dir, tmp_path, pairs):
    """Training from a recipe that asks for remote code: ignored, warned about."""
    folder, marker, _ = model_dir
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"llm": {"name": "hf-causal-lm", "path": str(folder),
                                                        "trust_remote_code": True}, "vision": "tiny-vision"},
                                              "data": {"train": [{"path": str(pairs)}]},
                                              "run": {"output_dir": str(tmp_path / "run"), "max_steps": 1,
                                                      "batch_size": 2, "progress": False}}))
    with pytest.warns(RemoteCodeWarning, match="ignored"):
        result = CliRunner().invoke(cli, ["compose", "--config", str(recipe), "model.llm.trust_remote_code=true",
                                          "train", "--stage", "align"])
    assert result.exit_code == 0, result.output
    assert "align: 1 steps" in result.output and not marker.exists()


def test_worker_processes_get_the_grant_only_from_the_command(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    from mpm_framework.training import launch

    commands = []
    monkeypatch.setattr(launch.subprocess, "call", lambda command: commands.append(command) or 0)
    cfg = OmegaConf.create({"run": {"output_dir": str(tmp_path / "run")}})
    monkeypatch.setattr(launch, "save_config", lambda cfg, path: None)
    launch.launch_workers(cfg, "align", 2, resume=False)
    with trusting_remote_code():
        launch.launch_workers(cfg, "align", 2, resume=False)
    assert "--trust-remote-code" not in commands[0] and commands[1][-1] == "--trust-remote-code"


def test_unit_rules(tmp_path, model_dir):
    folder, _, code = model_dir
    assert remote_code_files(folder) == [str(code)]
    with pytest.warns(RemoteCodeWarning, match="ignored"):
        assert allow_remote_code(folder, local=True, config_value=True) is False
    with trusting_remote_code(), pytest.warns(RemoteCodeWarning, match="marked.py"):
        assert allow_remote_code(folder, local=True) is True
    cfg = {"model": {"llm": {"trust_remote_code": True}, "vision": {"name": "x"}},
           "extra": [{"trust_remote_code": True}]}
    with pytest.warns(RemoteCodeWarning, match="config.yaml"):
        assert ignore_remote_code_settings(cfg, "run/config.yaml") == ["model.llm.trust_remote_code",
                                                                       "extra[0].trust_remote_code"]
    assert cfg["model"]["llm"]["trust_remote_code"] is False and cfg["extra"][0]["trust_remote_code"] is False
