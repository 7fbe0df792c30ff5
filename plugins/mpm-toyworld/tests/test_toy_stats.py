"""Bootstrap confidence intervals and the headline comparison, on known data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpm_toyworld.report import headline, headline_markdown
from mpm_toyworld.stats import bootstrap_mean, paired_difference, scene_scores


def test_bootstrap_interval_matches_the_normal_interval_of_a_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(0.6, 0.2, size=4000)
    ci = bootstrap_mean([x], seed=3)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(x.size)  # analytic 95% interval of the mean
    assert ci.mean == pytest.approx(x.mean())
    assert ci.low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert ci.high == pytest.approx(x.mean() + half, abs=0.15 * half)
    assert ci.n == 4000 and bootstrap_mean([x], seed=3) == ci  # seeded: reproducible


def test_a_constant_sample_has_a_zero_width_interval():
    ci = bootstrap_mean([[0.5] * 30, [0.5] * 30])
    assert (ci.mean, ci.low, ci.high) == (0.5, 0.5, 0.5)
    assert not paired_difference([[0.5] * 30], [[0.5] * 30]).significant


def test_seeds_widen_the_interval_when_they_disagree():
    rng = np.random.default_rng(0)
    scenes = [rng.normal(0.5, 0.1, 200) for _ in range(4)]
    agree = bootstrap_mean(scenes)
    shifted = bootstrap_mean([s + d for s, d in zip(scenes, (-0.2, -0.1, 0.1, 0.2))])
    assert shifted.high - shifted.low > 3 * (agree.high - agree.low)


def test_nan_and_empty_samples():
    assert bootstrap_mean([[float("nan"), 1.0, 1.0]]).n == 2
    assert math.isnan(bootstrap_mean([[]]).mean) and bootstrap_mean([[]]).to_json()["mean"] is None


def test_pairing_finds_a_small_shift_the_unpaired_intervals_hide():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, 60)  # scenes differ a lot in difficulty
    a, b = base + 0.05, base + rng.normal(0, 0.01, 60)
    ia, ib = bootstrap_mean([a]), bootstrap_mean([b])
    assert ia.low < ib.high  # the two intervals overlap ...
    diff = paired_difference([a], [b])
    assert diff.significant and diff.low > 0  # ... the paired difference does not include 0
    assert diff.mean == pytest.approx(a.mean() - b.mean())
    with pytest.raises(ValueError, match="same scenes"):
        paired_difference([a], [b[:10]])


def test_scene_scores_from_prediction_rows():
    rows = [
        {"lang": "de", "task": "caption", "scene": 0, "score": 0.5, "in_language": True},
        {"lang": "de", "task": "vqa", "scene": 0, "score": 1.0, "in_language": None},
        {"lang": "de", "task": "vqa", "scene": 0, "score": 0.0, "in_language": False},
        {"lang": "de", "task": "caption", "scene": 1, "score": 1.0, "in_language": True},
        {"lang": "de", "task": "vqa", "scene": 1, "score": 1.0, "in_language": True},
    ]
    de = scene_scores(rows)["de"]
    assert de["caption_f1"] == [0.5, 1.0] and de["vqa_acc"] == [0.5, 1.0]
    assert de["lang_rate"] == [0.5, 1.0]


def _per_scene(rng, mean, n=40):
    return {"de": {"caption_f1": list(np.clip(rng.normal(mean, 0.1, n), 0, 1)),
                   "vqa_acc": list(rng.integers(0, 2, n).astype(float)),
                   "lang_rate": [1.0] * n}}


def test_headline_marks_significant_differences_only():
    rng = np.random.default_rng(5)
    scenes = {"mpm": [_per_scene(rng, 0.7)], "no-pivot": [_per_scene(rng, 0.3)], "native": [_per_scene(rng, 0.7)]}
    # native's VQA: the same answers as mpm, so the difference is exactly 0
    scenes["native"][0]["de"]["vqa_acc"] = list(scenes["mpm"][0]["de"]["vqa_acc"])
    rows = {(r["lang"], r["metric"]): r for r in headline(scenes, ["en", "de"])}
    assert set(rows) == {("de", "caption_f1"), ("de", "vqa_acc")}  # target languages only
    cap = rows[("de", "caption_f1")]
    assert cap["diffs"]["mpm - no-pivot"]["significant"] and cap["diffs"]["mpm - no-pivot"]["mean"] > 0.3
    vqa = rows[("de", "vqa_acc")]["diffs"]["mpm - native"]
    assert not vqa["significant"] and vqa["low"] == vqa["high"] == 0.0
    text = headline_markdown(list(rows.values()), scenes=40, seeds=1)
    assert "not significant (CI +0.00 to +0.00)" in text
    assert f"**{cap['diffs']['mpm - no-pivot']['mean']:+.2f}**" in text
    assert "40 held-out scenes" in text
