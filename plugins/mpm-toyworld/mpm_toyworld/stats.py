"""Confidence intervals for the toy world's metrics: bootstrap over held-out
scenes and seeds (numpy, seeded; torch-free).

A metric of one condition and language is the mean of per-scene scores
(``scene_scores``). Its uncertainty has two sources: which scenes were held
out, and which seed trained the models. The interval resamples both,
hierarchically: seeds with replacement, then scenes with replacement within
each drawn seed (with one seed, scenes only). Differences between two
conditions are *paired*: every condition is evaluated on the same scenes of
a seed, so one draw of scene indices is applied to both, which removes the
scene-to-scene variance they share.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LEVEL = 0.95
N_BOOT = 2000
# Per-scene scores the CIs are computed for (the diagnostics keep seed spreads only).
SCENE_METRICS = ("caption_f1", "vqa_acc", "lang_rate")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its (percentile bootstrap) confidence interval."""

    mean: float
    low: float
    high: float
    n: int  # scores the estimate rests on (scenes x seeds)

    @property
    def significant(self) -> bool:
        """For a difference: the interval excludes 0."""
        return self.n > 0 and (self.low > 0 or self.high < 0)

    def to_json(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 6)

        return {"mean": clean(self.mean), "low": clean(self.low), "high": clean(self.high), "n": self.n}


_EMPTY = Interval(float("nan"), float("nan"), float("nan"), 0)


def _arrays(samples: Sequence[Sequence[float]]) -> list[np.ndarray]:
    out = []
    for seed_scores in samples:
        a = np.asarray(seed_scores, dtype=float)
        a = a[np.isfinite(a)]
        if a.size:
            out.append(a)
    return out


def _hierarchical(arrays: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap means: per draw, seeds resampled, then each seed's scenes."""
    # scene resamples per seed: (seeds, n_boot) means
    per_seed = np.stack([a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1) for a in arrays])
    if len(arrays) == 1:
        return per_seed[0]
    pick = rng.integers(0, len(arrays), size=(n_boot, len(arrays)))
    return per_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1)


def _interval(point: float, boots: np.ndarray, n: int, level: float) -> Interval:
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha])
    # a constant sample: no spread at all (quantile interpolation could leave 1e-17)
    if np.ptp(boots) == 0:
        low = high = point
    return Interval(float(point), float(low), float(high), n)


def bootstrap_mean(samples: Sequence[Sequence[float]], n_boot: int = N_BOOT, seed: int = 0,
                   level: float = LEVEL) -> Interval:
    """Mean of per-scene scores (one sequence per seed, NaN left out) with its
    bootstrap interval over seeds and scenes."""
    arrays = _arrays(samples)
    if not arrays:
        return _EMPTY
    point = float(np.mean([a.mean() for a in arrays]))  # seeds weigh equally, as in the resamples
    boots = _hierarchical(arrays, n_boot, np.random.default_rng(seed))
    return _interval(point, boots, sum(a.size for a in arrays), level)


def paired_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], n_boot: int = N_BOOT,
                      seed: int = 0, level: float = LEVEL) -> Interval:
    """``mean(a) - mean(b)`` with a paired bootstrap interval: ``a[k][i]`` and
    ``b[k][i]`` are the same scene of seed ``k``; a scene missing (NaN) in
    either is left out of both."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need the same seeds: {len(a)} vs {len(b)}")
    diffs = []
    for x, y in zip(a, b):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"paired samples need the same scenes: {x.shape} vs {y.shape}")
        keep = np.isfinite(x) & np.isfinite(y)
        diffs.append(x[keep] - y[keep])
    return bootstrap_mean(diffs, n_boot=n_boot, seed=seed, level=level)


# -- per-scene scores from a condition's predictions ------------------------------------------


def scene_scores(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """``{lang: {metric: [score of scene 0, 1, ...]}}`` from the rows of a
    ``predictions.jsonl``: a scene's caption F1, its share of right answers,
    its share of responses in the asked language (NaN where none was judged).
    Scenes are indexed alike in every language and condition of a seed."""
    scenes = sorted({int(r["scene"]) for r in rows})
    position = {s: i for i, s in enumerate(scenes)}
    sums: dict[tuple[str, str], np.ndarray] = {}
    counts: dict[tuple[str, str], np.ndarray] = {}

    def add(lang: str, metric: str, scene: int, value: float) -> None:
        key = (lang, metric)
        if key not in sums:
            sums[key], counts[key] = np.zeros(len(scenes)), np.zeros(len(scenes))
        sums[key][position[scene]] += value
        counts[key][position[scene]] += 1

    for r in rows:
        lang, scene = r["lang"], int(r["scene"])
        add(lang, "caption_f1" if r["task"] == "caption" else "vqa_acc", scene, float(r["score"]))
        if r.get("in_language") is not None:
            add(lang, "lang_rate", scene, float(r["in_language"]))
    out: dict[str, dict[str, list[float]]] = {}
    for lang in dict.fromkeys(r["lang"] for r in rows):
        out[lang] = {}
        for metric in SCENE_METRICS:
            key = (lang, metric)
            if key not in sums:
                out[lang][metric] = [float("nan")] * len(scenes)
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lang][metric] = (sums[key] / counts[key]).tolist()
    return out


def read_scene_scores(predictions: str | Path) -> dict[str, dict[str, list[float]]]:
    """:func:`scene_scores` of a ``predictions.jsonl`` file."""
    text = Path(predictions).read_text(encoding="utf-8")
    return scene_scores([json.loads(line) for line in text.splitlines() if line.strip()])
