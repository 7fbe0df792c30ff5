"""Evaluation reports: one JSON with everything, a markdown table, predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# column order and headers of the markdown table (unknown keys follow, as named)
COLUMNS = {
    "examples": "examples",
    "bleu": "BLEU",
    "chrf": "chrF",
    "cider": "CIDEr-D",
    "exact_match": "exact match",
    "accuracy": "accuracy",
    "language_rate": "language rate",
    "best_layer": "best layer",
    "retrieval_en_to_target": "retrieval en→xx",
    "retrieval_target_to_en": "retrieval xx→en",
    "mean_cosine": "pair cosine",
    "mean_cosine_other": "non-pair cosine",
}
HIDDEN = ("language_rate_counted", "language_rate_neutral")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown page: a row per language, per-layer tables for alignment."""
    langs = report["languages"]
    keys: list[str] = ["examples"]
    for entry in langs.values():
        for key in entry["metrics"]:
            if key not in keys and key not in HIDDEN:
                keys.append(key)
    keys.sort(key=lambda k: list(COLUMNS).index(k) if k in COLUMNS else len(COLUMNS))
    rows = []
    for lang, entry in langs.items():
        values = {"examples": entry["dataset"]["examples"], **entry["metrics"]}
        rows.append([lang, *[_fmt(values.get(k)) for k in keys]])
    parts = [f"# {report['task']} evaluation", "", _table(["lang", *[COLUMNS.get(k, k) for k in keys]], rows), ""]
    for lang, entry in langs.items():
        ds = entry["dataset"]
        note = f"- **{lang}**: {ds['format']} `{ds['path']}`"
        if ds.get("missing_images"):
            note += f", {ds['missing_images']} example(s) skipped (image missing)"
        route = entry.get("segmentation_route") or entry.get("tokenizer_route")  # the key before the rename
        if route:
            note += f", words: {route}"
        parts.append(note)
    for lang, entry in langs.items():
        if entry.get("layers"):
            header = ["layer", "retrieval en→xx", "retrieval xx→en", "pair cosine", "non-pair cosine"]
            rows = [[str(r["layer"]), _fmt(r["retrieval_en_to_target"]), _fmt(r["retrieval_target_to_en"]),
                     _fmt(r["mean_cosine"]), _fmt(r["mean_cosine_other"])] for r in entry["layers"]]
            parts += ["", f"## Alignment by layer: en–{lang}", "", _table(header, rows)]
    if report.get("plot"):
        parts += ["", f"![alignment by layer]({Path(report['plot']).name})"]
    if report.get("generation"):
        gen = ", ".join(f"{k}={v}" for k, v in report["generation"].items())
        parts += ["", f"Generation: {gen}"]
    return "\n".join(parts) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path,
                 records: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Path]:
    """``<task>.json``, ``<task>.md`` and ``<task>_<lang>_predictions.jsonl`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = report["task"].replace("-", "_")
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    for lang, rows in (records or {}).items():
        path = out / f"{stem}_{lang}_predictions.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[f"predictions_{lang}"] = path
    return paths
