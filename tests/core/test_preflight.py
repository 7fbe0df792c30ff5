"""Issue 16 "fail before building": everything the config alone can tell is
reported before a model is built, and the presets in use are printed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from mpm_framework import composition
from mpm_framework.cli.main import cli
from mpm_framework.config.loading import resolve_config
from mpm_framework.errors import ConfigError
from mpm_framework.plugins import get_registry
from mpm_framework.training.preflight import preflight, preset_summary


@pytest.fixture
def no_build(monkeypatch):
    """Building a stack fails the test: preflight must stop the command first."""
    def build_stack(*args, **kwargs):
        raise AssertionError("a model was built before the config was checked")

    monkeypatch.setattr(composition, "build_stack", build_stack)


def _train(*args):
    return CliRunner().invoke(cli, ["compose", *args, "--no-progress"] if args[-1] == "train" else ["compose", *args])


def _fails_cleanly(result, *expected):
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    return result.output


def _needs(*plugins):
    registry = get_registry()
    for kind, name in plugins:
        if name not in registry.names(kind):
            pytest.skip(f"{kind} '{name}' is not installed")


def test_the_cards_command_fails_before_building(no_build, tmp_path, monkeypatch):
    _needs(("llm", "cpm-bee"), ("vision", "beit3"), ("language", "zh"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["compose", "--llm", "cpm-bee", "--vision", "beit3", "--lang", "zh", "train"])
    _fails_cleanly(
        result,
        "presets: model.llm (cpm-bee): size 10b; model.vision (beit3): preset large",
        "Error: cannot start training (nothing was built):",
        "model.llm: cpm-bee size '10b' needs its weights: set model.llm.path to the official checkpoint, "
        "or model.llm.size=tiny for a small random model",
        "no training data for stage 'align': set data.train",
    )
    tiny = CliRunner().invoke(cli, ["compose", "--llm", "cpm-bee", "--vision", "beit3", "--lang", "zh",
                                    "model.llm.size=tiny", "model.vision.preset=tiny", "train"])
    out = _fails_cleanly(tiny, "presets: model.llm (cpm-bee): size tiny; model.vision (beit3): preset tiny",
                         "Error: cannot start training (nothing was built): no training data for stage 'align'")
    assert "needs its weights" not in out


def test_show_config_prints_the_presets(tmp_path):
    _needs(("llm", "cpm-bee"), ("vision", "beit3"))
    result = CliRunner().invoke(cli, ["compose", "--llm", "cpm-bee", "--vision", "beit3", "show-config"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "# presets: model.llm (cpm-bee): size 10b; model.vision (beit3): preset large"
    assert "size: 10b" in result.output and "preset: large" in result.output
    help_text = CliRunner().invoke(cli, ["compose", "--help"]).output
    assert "default to the real published size" in help_text and "model.llm.size=tiny" in help_text


def _pairs(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(folder / f"img{i}.png")
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps({"image": f"img{i}.png", "text": f"square {i}"}) + "\n" for i in range(n)))
    return path


def test_every_problem_is_listed_at_once(tiny_components, tmp_path):
    pairs = _pairs(tmp_path / "data")
    (tmp_path / "text.jsonl").write_text('{"text": "hello"}\n')
    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", recipe={
        "run": {"output_dir": str(tmp_path / "run"), "init_from": str(tmp_path / "no-run")},
        "data": {"train": [{"path": str(pairs)}, {"path": str(tmp_path / "data" / "pairz.jsonl")},
                           {"path": str(tmp_path / "text.jsonl"), "kind": "text"},
                           {"path": str(tmp_path / "shards" / "*.tar")},
                           {"path": str(pairs), "image_root": str(tmp_path / "images")}],
                 "eval": [{"path": str(tmp_path / "heldout.jsonl")}]},
    })
    with pytest.raises(ConfigError) as err:
        preflight(cfg, ["align"])
    lines = str(err.value).splitlines()
    assert lines[0] == "cannot start training (nothing was built):"
    assert [ln.strip() for ln in lines[1:]] == [
        f"data.train[1].path: {tmp_path}/data/pairz.jsonl does not exist. Did you mean 'pairs.jsonl'?",
        "data.train[2] holds 'text' records but stage 'align' trains on pairs/instruct (set data.train[2].kind)",
        f"data.train[3].path: no file matches {tmp_path}/shards/*.tar",
        f"data.train[4].image_root: folder {tmp_path}/images does not exist",
        f"data.eval[0].path: {tmp_path}/heldout.jsonl does not exist.",
        f"run.init_from: {tmp_path}/no-run does not exist",
    ]


def test_stage_components_are_checked(tiny_components, tmp_path):
    pairs = _pairs(tmp_path / "data")
    text_only = resolve_config(llm="tiny-llm", overrides=[f"run.output_dir={tmp_path}/run",
                                                          f"data.train=[{{path: {pairs}}}]"])
    with pytest.raises(ConfigError, match="stage 'align' needs a vision: compose with --vision NAME"):
        preflight(text_only, ["align"])
    with pytest.raises(ConfigError, match="stage 'paint' needs a decoder: compose with --decoder NAME"):
        preflight(text_only, ["paint"])
    with pytest.raises(ConfigError, match=r"unknown stage 'algin'\. Did you mean 'align'\?"):
        preflight(text_only, ["algin"])
    chat = resolve_config(llm="tiny-llm", vision="tiny-vision",
                          overrides=[f"run.output_dir={tmp_path}/run", f"data.train=[{{path: {pairs}}}]"])
    preflight(chat, ["align", "instruct"])  # all fine: no error
    no_data = resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=[f"run.output_dir={tmp_path}/run"])
    preflight(no_data, ["align"], has_samples=True)  # the Python API passes in-memory samples


def test_an_existing_run_is_reported_before_building(tiny_components, tmp_path, no_build):
    pairs = _pairs(tmp_path / "data")
    step = tmp_path / "run" / "align" / "checkpoints" / "step-00000003"
    step.mkdir(parents=True)
    (step / "trainer_state.json").write_text("{}")
    args = ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", f"run.output_dir={tmp_path}/run",
            f"data.train=[{{path: {pairs}}}]", "train", "--no-progress"]
    _fails_cleanly(CliRunner().invoke(cli, args), f"{tmp_path}/run/align already holds a training run of stage "
                                                  "'align'. Continue it with --resume")


def test_the_training_module_entry_runs_the_preflight(tiny_components, tmp_path, no_build, capsys):
    from mpm_framework.training.__main__ import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: {{llm: tiny-llm, vision: tiny-vision}}\nrun: {{output_dir: {tmp_path}/run}}\n")
    assert main(["--config", str(recipe), "--stage", "align"]) == 1
    assert "Error: cannot start training (nothing was built): no training data for stage 'align'" \
        in capsys.readouterr().err


def test_preset_summary_names_only_preset_fields(tiny_components):
    assert preset_summary(resolve_config(llm="tiny-llm", vision="tiny-vision")) is None
