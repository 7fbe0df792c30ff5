"""Issue 16 item 7: bad recipes, bad values and bomb images are one-line errors
through the ``mpm`` CLI, never tracebacks."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli
from mpm_framework.config.loading import load_yaml, resolve_config
from mpm_framework.errors import ConfigError, DataError
from mpm_framework.imaging import load_image


def _fails_cleanly(result, *expected: str) -> str:
    """Exit status 1 from a ClickException (an uncaught exception would be
    stored in result.exception, not SystemExit), no traceback, the texts."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    return result.output


def _show(recipe, *extra):
    return CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision",
                                    "--config", str(recipe), *extra, "show-config"])


@pytest.mark.parametrize("text, expected", [
    ("run:\n  lr: 1e-4\n  batch_size: [1, 2\n",
     "line 4, column 1: YAML syntax error: while parsing a flow sequence (line 3, column 15), expected ',' or ']'"),
    ("run:\n\tlr: 1\n", "line 2, column 1: YAML syntax error"),
    ("run:\n  lr: 1\n   batch_size: 2\n", "line 3, column 14: YAML syntax error"),
])
def test_yaml_syntax_errors_name_file_and_line(tiny_components, tmp_path, text, expected):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    out = _fails_cleanly(_show(recipe), f"{recipe}, {expected}")
    if "\t" in text:
        assert "(YAML indents with spaces, not tabs)" in out


@pytest.mark.parametrize("text, expected", [
    ("run: 5\n", "line 1: 'run' must be a mapping (indented 'key: value' lines), got the value 5"),
    ("model:\n  llm: tiny-llm\nrun:\n  - lr: 1\n", "line 4: 'run' must be a mapping"),
    ("data:\n  train: pairs.jsonl\n", "line 2: 'data.train' must be a list of data sources ('- path: FILE' items), "
                                      "got the text 'pairs.jsonl'. Write: train: [{path: pairs.jsonl}]"),
    ("data:\n  train:\n    - pairs.jsonl\n", "line 3: 'data.train' must be a list of data sources"),
    ("model:\n  vision: [1, 2]\n", "line 2: 'model.vision' must be a component name or a mapping"),
    ("stages:\n  align:\n    run: fast\n", "line 3: 'stages.align.run' must be a mapping, got the text 'fast'"),
    ("- run\n- data\n", "line 1: a recipe must be a mapping with model / data / run / stages sections"),
])
def test_sections_of_the_wrong_shape(tiny_components, tmp_path, text, expected):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    expected = expected.replace("must be a mapping, got", "must be a mapping (indented 'key: value' lines), got")
    _fails_cleanly(_show(recipe), f"{recipe}, {expected}")
    with pytest.raises(ConfigError):
        load_yaml(recipe)


def test_an_empty_section_means_the_defaults(tiny_components, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("run:\ndata:\n")
    result = _show(recipe)
    assert result.exit_code == 0, result.output
    assert "lr: 0.0001" in result.output


def test_overrides_of_the_wrong_shape(tiny_components):
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "run=5", "show-config"])
    _fails_cleanly(result, "the config overrides: 'run' must be a mapping")


def test_value_ranges_are_checked_when_resolving(tiny_components):
    with pytest.raises(ConfigError) as err:
        resolve_config(llm="tiny-llm", overrides=["run.lr=0", "run.batch_size=0", "data.calibration_share=1.5",
                                                  "run.max_steps=-1", "run.warmup_steps=-2", "run.betas=[0.9,1.5]",
                                                  "run.schedule=cosin", "data.max_bad_fraction=-0.1"])
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid config values:"
    assert set(lines[1:]) == {
        "  run.lr must be > 0, got 0.0",
        "  run.batch_size must be >= 1, got 0",
        "  run.max_steps must be >= 1, got -1",
        "  run.warmup_steps must be >= 0, got -2",
        "  run.schedule must be one of cosine, linear, constant, got 'cosin'",
        "  run.betas must be two numbers in [0, 1), got [0.9, 1.5]",
        "  data.calibration_share must be in [0, 1), got 1.5",
        "  data.max_bad_fraction must be between 0 and 1, got -0.1",
    }
    with pytest.raises(ConfigError, match=r"stages.align.run.lr must be > 0, got -0.001"):
        resolve_config(llm="tiny-llm", recipe={"stages": {"align": {"run": {"lr": -1e-3}}}})
    with pytest.raises(ConfigError, match=r"data.train\[0\].weight must be > 0, got 0"):
        resolve_config(llm="tiny-llm", recipe={"data": {"train": [{"path": "x.jsonl", "weight": 0}]}})
    good = resolve_config(llm="tiny-llm", overrides=["run.lr=1e-5", "data.calibration_share=0.1"])
    assert good.run.lr == 1e-5


def test_value_ranges_through_the_cli(tiny_components):
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "run.lr=-1",
                                      "train"])
    _fails_cleanly(result, "Error: invalid config value: run.lr must be > 0, got -1.0")


# -- decompression bombs ------------------------------------------------------------------------


def _bomb(path, side: int):
    """A PNG whose header declares side x side pixels; one bit each, so it is
    cheap to write, but decoding it as RGB would take side*side*3 bytes."""
    Image.new("1", (side, side)).save(path, optimize=True)
    return path


def test_bomb_images_are_refused_from_the_header(tmp_path, monkeypatch):
    over_ours = _bomb(tmp_path / "big.png", 10_000)  # 100 M pixels: over MPM's default limit (PIL only warns)
    with pytest.raises(DataError, match=r"is 10000x10000 = 100,000,000 pixels, over the limit of 89,478,485 "
                                        r"\(a decompression bomb\?\)"):
        load_image(over_ours)
    over_pils = _bomb(tmp_path / "huge.png", 14_000)  # 196 M: PIL itself refuses while opening
    with pytest.raises(DataError, match="too large to decode"):
        load_image(over_pils)
    small = Image.new("RGB", (40, 30))
    small.save(tmp_path / "small.png")
    monkeypatch.setenv("MPM_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match="40x30 = 1,200 pixels, over the limit of 1,000"):
        load_image(tmp_path / "small.png")
    monkeypatch.setenv("MPM_MAX_IMAGE_PIXELS", "1200")
    assert load_image(tmp_path / "small.png").size == (40, 30)


def test_bomb_image_in_chat_is_a_clear_error(tiny_components, tmp_path):
    bomb = _bomb(tmp_path / "bomb.png", 10_000)
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "chat",
                                      "--image", str(bomb), "--no-stream", "--max-new-tokens", "2", "what is it?"])
    _fails_cleanly(result, f"image {bomb} is 10000x10000", "decompression bomb")


def test_bomb_image_in_eval_is_a_clear_error(tiny_components, tmp_path):
    import json

    _bomb(tmp_path / "bomb.png", 10_000)
    Image.new("RGB", (32, 32), (200, 0, 0)).save(tmp_path / "ok.png")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in [
        {"image": "ok.png", "question": "What color is it?", "answer": "red"},
        {"image": "bomb.png", "question": "What is it?", "answer": "noise"}]))
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "eval",
                                      "--task", "vqa", "--lang", "en", "--data", str(questions),
                                      "--output", str(tmp_path / "out"), "--max-new-tokens", "2"])
    _fails_cleanly(result, f"image {tmp_path / 'bomb.png'} is 10000x10000", "decompression bomb")
