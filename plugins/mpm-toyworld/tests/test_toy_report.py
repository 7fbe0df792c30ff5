"""Aggregation over seeds, the target checks and the written report."""

from __future__ import annotations

import json
import math

import pytest
from mpm_toyworld.profiles import apply_overrides, get_profile
from mpm_toyworld.report import aggregate, check_targets, write_report

from mpm_framework.errors import ConfigError

LANGS = ["en", "de"]


def _seed(seed, values):
    conditions = {}
    for cond, (f1, acc, rate) in values.items():
        conditions[cond] = {lang: {"caption_f1": f1, "vqa_acc": acc, "lang_rate": rate if lang == "de" else 1.0,
                                   "caption_f1_any": f1, "vqa_acc_any": acc} for lang in LANGS}
    return {"seed": seed, "conditions": conditions,
            "probe": {"mpm": {"de<-en": {"caption_f1": 0.9, "vqa_acc": 0.8}}}}


def _summary(tmp_path):
    per_seed = [
        _seed(0, {"mpm": (0.8, 0.7, 0.97), "mpm-cal0": (0.2, 0.3, 0.1), "no-pivot": (0.3, 0.2, 0.9),
                  "native": (0.9, 0.8, 1.0)}),
        _seed(1, {"mpm": (0.6, 0.7, 0.99), "mpm-cal0": (0.2, 0.3, 0.2), "no-pivot": (0.3, 0.2, float("nan")),
                  "native": (0.9, 0.8, 1.0)}),
    ]
    summary = aggregate(per_seed, LANGS, ["mpm", "mpm-cal0", "no-pivot", "native"])
    summary.update(profile="full", command="mpm demo --profile full", total_s=12.0, timings_s={"pretrain/mpm": 3.0},
                   environment={"cpus": 2}, settings={"profile": {"eval_scenes": 10}},
                   conditions_described={"mpm": "m", "mpm-cal0": "c", "no-pivot": "n", "native": "u"})
    return summary


def test_mean_and_spread_over_seeds(tmp_path):
    summary = _summary(tmp_path)
    cell = summary["table"]["mpm"]["de"]["caption_f1"]
    assert cell["mean"] == pytest.approx(0.7) and cell["std"] == pytest.approx(math.sqrt(0.02)) and cell["n"] == 2
    nan_cell = summary["table"]["no-pivot"]["de"]["lang_rate"]
    assert nan_cell["n"] == 1 and nan_cell["mean"] == pytest.approx(0.9)  # a seed without verdicts is left out


def test_targets_are_checked_against_native(tmp_path):
    targets = {(t["target"], t["lang"]): t for t in _summary(tmp_path)["targets"]}
    f1 = targets[("mpm / native caption_f1", "de")]
    assert f1["value"] == pytest.approx(0.7 / 0.9) and f1["passed"] is False
    assert targets[("mpm / native vqa_acc", "de")]["passed"] is True
    assert targets[("no-pivot / native caption_f1", "de")]["passed"] is True
    assert targets[("lang_rate mpm-cal0", "de")]["passed"] is True
    assert targets[("lang_rate mpm", "de")]["passed"] is True
    assert all(t["lang"] != "en" for t in targets.values())
    assert check_targets({}, ["de"])[0]["value"] is None  # nothing measured: no verdict


def test_report_files(tmp_path, capsys):
    paths = write_report(_summary(tmp_path), tmp_path)
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "mpm demo --profile full" in text and "| mpm | 0.70 ± 0.14 | 0.70 ± 0.14 |" in text
    assert "Targets" in text and "**no**" in text
    data = json.loads(paths["json"].read_text(encoding="utf-8"))  # standard JSON: NaN became null
    assert data["table"]["no-pivot"]["de"]["lang_rate"]["n"] == 1
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Caption attribute F1" in capsys.readouterr().out


def test_profiles_and_overrides():
    quick, full = get_profile("quick"), get_profile("full")
    assert len(full.seeds) >= 3 and full.pretrain_steps > quick.pretrain_steps
    changed = apply_overrides(quick, ["pretrain_steps=7", "align_lr=0.01", "seeds=1,2"])
    assert (changed.pretrain_steps, changed.align_lr, changed.seeds) == (7, 0.01, [1, 2])
    assert quick.pretrain_steps != 7  # profiles are not mutated
    with pytest.raises(ConfigError, match="pretrain_steps"):
        apply_overrides(quick, ["pretrain_step=7"])
    with pytest.raises(ConfigError, match="expects int"):
        apply_overrides(quick, ["pretrain_steps=many"])
    with pytest.raises(ConfigError, match="quick"):
        get_profile("quik")


def test_vqa_accuracy_by_question_kind(tmp_path, capsys):
    """The report says on which kind of question a language loses its points."""
    from mpm_toyworld.breakdown import accuracy_by_kind, predictions

    def row(lang, kind, score, score_any=None):
        return {"lang": lang, "task": "vqa", "kind": kind, "score": score,
                "score_any": score if score_any is None else score_any}

    for seed, rows in (("seed0", [row("fr", "position", 0.0, 1.0), row("fr", "count", 1.0), row("en", "count", 1.0)]),
                       ("seed1", [row("fr", "position", 1.0), row("fr", "count", 0.0)])):
        folder = tmp_path / seed / "conditions" / "mpm" / "eval"
        folder.mkdir(parents=True)
        caption = {"lang": "fr", "task": "caption", "kind": "caption", "score": 0.5, "score_any": 0.5}
        (folder / "predictions.jsonl").write_text("\n".join(json.dumps(r) for r in [caption, *rows]) + "\n")
    table = accuracy_by_kind(predictions(tmp_path))
    assert table["mpm"]["fr"]["position"] == {"acc": 0.5, "acc_any": 1.0, "n": 2}
    assert table["mpm"]["fr"]["count"]["acc"] == 0.5 and table["mpm"]["en"]["count"]["n"] == 1
    text = write_report(_summary(tmp_path), tmp_path, echo=False)["markdown"].read_text(encoding="utf-8")
    assert "### VQA accuracy by question kind" in text
    assert "| kind | en | fr |" in text and "| position | – | 0.50 (1.00) n=2 |" in text
