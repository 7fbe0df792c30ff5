"""``sweep.md``: every point of a sweep as tables, one per condition and metric (torch-free).

The plots show the trend; the tables hold the numbers behind them: per swept
value and language the mean with its 95% CI (bootstrap over held-out scenes
and seeds) for the scored metrics, and the seed mean of the diagnostics that
also accept English content (``*_any``: did the model understand, whatever
language it answered in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import TITLES, _ci_cell
from .scoring import DIAGNOSTICS, METRICS


def _cell(value: dict[str, Any] | None, with_ci: bool) -> str:
    if with_ci:
        return _ci_cell(value)  # the demo report's "mean [low, high]"
    return "–" if not value or value.get("mean") is None else f"{value['mean']:.2f}"


def sweep_markdown(record: dict[str, Any]) -> str:
    """The tables of ``record`` (``sweep.json``'s content) as Markdown."""
    keys = [g["key"] for g in record["grid"]]
    langs = ["en", *(c for c in record["langs"] if c != "en")]
    points = record["points"]
    lines = [f"# Sweep over {', '.join(keys) or 'nothing'}", "",
             f"Profile `{record['profile']}`{' with ' + ' '.join(record['overrides']) if record['overrides'] else ''}; "
             f"{len(record['seeds'])} seed(s) per point; conditions {', '.join(record['conditions'])}. "
             "Scored metrics: mean [95% CI] (bootstrap over held-out scenes and seeds). "
             "Diagnostics (`*_any`, content accepted in English too): mean over seeds.", ""]
    for cond in record["conditions"]:
        for metric in (*METRICS, *DIAGNOSTICS):
            scored = metric in METRICS
            lines += [f"## {cond}: {TITLES.get(metric, metric)} (`{metric}`)", "",
                      "| " + " | ".join([*keys, *langs]) + " |", "|" + "---|" * (len(keys) + len(langs))]
            for p in points:
                source = p["ci"] if scored else p["table"]
                cells = [_cell(source.get(cond, {}).get(lang, {}).get(metric), scored) for lang in langs]
                lines.append("| " + " | ".join([*(p["point"][k] for k in keys), *cells]) + " |")
            lines.append("")
    lines += ["## Points", "", "| point | status | reused | wall time | re-run alone |", "|---|---|---|---|---|"]
    for p in points:
        reused = ", ".join(f"{seed}: {r['stage']}" for seed, r in (p.get("reused") or {}).items()) or "–"
        wall = f"{p['total_s']:.0f} s" if p.get("total_s") is not None else "–"
        lines.append(f"| {', '.join(f'{k}={v}' for k, v in p['point'].items())} | {p['status']} | {reused} | "
                     f"{wall} | `{p['command']}` |")
    return "\n".join(lines) + "\n"


def write_sweep_markdown(record: dict[str, Any], path: Path) -> Path:
    path.write_text(sweep_markdown(record), encoding="utf-8")
    return path
