"""``mpm compose ... eval`` on small files in every supported format."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.composition import compose
from mpm_framework.evaluation.metrics import bleu, cider

TINY = ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision"]


def _eval(*args):
    result = CliRunner().invoke(cli, [*TINY, "eval", *args])
    assert result.exit_code == 0, result.output
    return result


def _report(out, task):
    stem = task.replace("-", "_")
    return json.loads((out / f"{stem}.json").read_text()), (out / f"{stem}.md").read_text()


def test_caption_on_xm3600(tiny_components, xm3600, tmp_path):
    out = tmp_path / "out"
    result = _eval("--task", "caption", "--lang", "en", "--data", str(xm3600 / "captions.jsonl"),
                   "--output", str(out), "--max-new-tokens", "6", "--batch-size", "2")
    report, table = _report(out, "caption")
    metrics = report["languages"]["en"]["metrics"]
    assert set(metrics) >= {"bleu", "chrf", "cider", "language_rate"}
    assert report["languages"]["en"]["dataset"] == {"format": "xm3600", "path": str(xm3600 / "captions.jsonl"),
                                                     "examples": 3, "missing_images": 0}
    assert "| lang | examples | BLEU | chrF | CIDEr-D |" in table and "| en | 3 |" in table
    assert table in result.output
    rows = [json.loads(line) for line in (out / "caption_en_predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["000411001ff7dd4f", "0006ba4d54a5ad42", "0013ea2087020901"]
    # the numbers are the metrics of what the stack generates, recomputed here
    stack = compose(llm="tiny-llm", vision="tiny-vision")
    prompt = stack.languages["en"].caption_prompts[0]
    predictions = stack.generate([xm3600 / "images" / f"{r['id']}.jpg" for r in rows], [prompt] * 3,
                                 max_new_tokens=6)
    assert [r["prediction"] for r in rows] == predictions
    refs = [r["references"] for r in rows]
    assert metrics["bleu"] == pytest.approx(bleu(predictions, refs, stack.languages["en"]))
    assert metrics["cider"] == pytest.approx(cider(predictions, refs, stack.languages["en"]).score)


@pytest.mark.parametrize("fixture", ["xgqa", "maxm", "own_vqa"])
def test_vqa_in_each_format(tiny_components, request, tmp_path, fixture, xm3600):
    data = request.getfixturevalue(fixture)
    args = ["--task", "vqa", "--lang", "en", "--data", str(data), "--output", str(tmp_path / "out"),
            "--max-new-tokens", "4"]
    if fixture == "maxm":
        args += ["--images", str(xm3600 / "images")]
    _eval(*args)
    report, table = _report(tmp_path / "out", "vqa")
    entry = report["languages"]["en"]
    assert entry["dataset"]["format"] == {"xgqa": "xgqa", "maxm": "maxm", "own_vqa": "vqa-jsonl"}[fixture]
    assert 0.0 <= entry["metrics"]["accuracy"] <= 1.0 and "exact match" in table
    assert report["generation"]["max_new_tokens"] == 4


def test_language_rate_and_several_languages(tiny_components, xgqa, tmp_path):
    _eval("--task", "language-rate", "--lang", "en", "--data", str(xgqa / "data" / "zero_shot"),
          "--output", str(tmp_path / "out"), "--max-new-tokens", "4", "--limit", "1")
    report, table = _report(tmp_path / "out", "language-rate")
    assert report["languages"]["en"]["dataset"]["examples"] == 1
    assert "language rate" in table


def test_alignment_probe_command(tiny_components, parallel, tmp_path):
    out = tmp_path / "align"
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "eval", "--task", "alignment", "--lang", "de",
                                      "--data", str(parallel), "--output", str(out)])
    assert result.exit_code == 0, result.output
    report, table = _report(out, "alignment")
    layers = report["languages"]["de"]["layers"]
    assert [row["layer"] for row in layers] == [0, 1, 2]  # embeddings + the tiny LLM's 2 blocks
    assert "## Alignment by layer: en–de" in table and "alignment.png" in table
    assert (out / "alignment.png").stat().st_size > 1000


def test_zh_caption_and_vqa_with_the_chinese_pack(tiny_components, mpm_plugin, xm3600, maxm, tmp_path):
    from mpm_framework.plugins import get_registry

    if "zh" not in get_registry().names("language"):  # installed packs register themselves
        mpm_plugin(pytest.importorskip("mpm_lang_zh.plugin"), name="mpm-lang-zh-test")
    _eval("--task", "caption", "--lang", "zh", "--data", str(xm3600), "--output", str(tmp_path / "c"),
          "--max-new-tokens", "4")
    report, _ = _report(tmp_path / "c", "caption")
    assert report["languages"]["zh"]["dataset"]["examples"] == 3
    _eval("--task", "vqa", "--lang", "zh,en", "--data", str(maxm), "--images", str(xm3600 / "images"),
          "--output", str(tmp_path / "v"), "--max-new-tokens", "4")
    report, table = _report(tmp_path / "v", "vqa")
    assert list(report["languages"]) == ["zh", "en"] and "| zh |" in table and "| en |" in table


def test_eval_mistakes_are_one_line_errors(tiny_components, xm3600, parallel, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, [*TINY, "eval", "--task", "vqa", "--lang", "en", "--data", str(xm3600)])
    assert result.exit_code == 1 and "task 'vqa' needs vqa data" in result.output
    result = runner.invoke(cli, [*TINY, "eval", "--task", "caption", "--data", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1 and "evaluation data not found" in result.output
    result = runner.invoke(cli, [*TINY, "eval", "--task", "captions", "--data", str(xm3600)])
    assert result.exit_code == 2 and "caption" in result.output
    result = runner.invoke(cli, [*TINY, "eval", "--task", "caption", "--lang", "xx", "--data", str(xm3600),
                                 "--output", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unknown language 'xx'" in result.output
    assert "Traceback" not in result.output
