"""Checks that a demo run directory is complete (torch-free).

Used by the tests (the quick profile in CI asserts the pipeline's integrity,
not the scientific targets) and printed at the end of every ``mpm demo``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .conditions import CONDITIONS
from .scoring import METRICS, is_valid_metric


def check_run(out: str | Path) -> list[str]:
    """Problems found in the run directory ``out`` (empty: complete)."""
    out = Path(out)
    problems: list[str] = []
    for name in ("results.md", "results.json", "results.png", "settings.json"):
        if not (out / name).is_file():
            problems.append(f"missing {name}")
    if problems:
        return problems
    summary = json.loads((out / "results.json").read_text(encoding="utf-8"))
    settings = summary["settings"]
    langs, conditions = summary["langs"], settings["conditions"]
    for seed in summary["seeds"]:
        seed_dir = out / f"seed{seed}"
        stages = [seed_dir / "pivots" / pivot / "pretrain" for pivot in
                  sorted({CONDITIONS[c].pivot for c in conditions})]
        stages += [seed_dir / "align" / f"{CONDITIONS[c].pivot}-{CONDITIONS[c].align}" / "align"
                   for c in conditions]
        stages += [seed_dir / "conditions" / c / "instruct" for c in conditions]
        for stage in dict.fromkeys(stages):
            for part in ("config.yaml", "metrics.jsonl", "final/model.safetensors", "final/summary.json"):
                if not (stage / part).is_file():
                    problems.append(f"seed {seed}: {stage.relative_to(out)}/{part} missing")
        for pivot in sorted({CONDITIONS[c].pivot for c in conditions}):
            if not (seed_dir / "pivots" / pivot / "model" / "config.json").is_file():
                problems.append(f"seed {seed}: pivot '{pivot}' was not saved as a checkpoint")
        for cond in conditions:
            predictions = seed_dir / "conditions" / cond / "eval" / "predictions.jsonl"
            if not predictions.is_file():
                problems.append(f"seed {seed}: {cond} has no predictions")
                continue
            rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
            expected = len(langs) * settings["profile"]["eval_scenes"] * (1 + settings["profile"]["questions_per_scene"])
            if len(rows) != expected:
                problems.append(f"seed {seed}: {cond} has {len(rows)} predictions, expected {expected}")
    for cond in conditions:
        for lang in langs:
            cell = summary["table"].get(cond, {}).get(lang)
            if cell is None:
                problems.append(f"no results for {cond} / {lang}")
                continue
            for metric in METRICS:
                value = (cell.get(metric) or {}).get("mean")
                if not is_valid_metric(value):
                    problems.append(f"{cond} / {lang} / {metric} = {value!r} is not a number in [0, 1]")
    return problems
