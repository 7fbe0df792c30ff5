"""Where a language loses points: VQA accuracy per question kind, and what the
wrong answers were (torch-free; reads a finished run's predictions).

``mpm demo`` reports one VQA accuracy per language; when one language trails
(French, in the full profile), the question is whether it trails on every kind
of question or on one (counting, colours, shapes, positions), and whether its
wrong answers carry the right content in another form (``score_any``: right in
English) or are wrong outright. This module answers both for any run folder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def predictions(run: Path) -> list[dict[str, Any]]:
    """Every prediction row of every seed and condition, with ``seed`` and ``condition`` added."""
    rows = []
    for file in sorted(Path(run).glob("seed*/conditions/*/eval/predictions.jsonl")):
        seed, condition = file.parts[-5], file.parts[-3]
        for line in file.read_text(encoding="utf-8").splitlines():
            rows.append({**json.loads(line), "seed": seed, "condition": condition})
    return rows


def accuracy_by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{condition: {lang: {kind: {"acc", "acc_any", "n"}}}}`` over the VQA rows."""
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["task"] == "vqa":
            cells[(r["condition"], r["lang"], r["kind"])].append(r)
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (cond, lang, kind), items in sorted(cells.items()):
        out.setdefault(cond, {}).setdefault(lang, {})[kind] = {
            "acc": sum(r["score"] for r in items) / len(items),
            "acc_any": sum(r["score_any"] for r in items) / len(items),
            "n": len(items),
        }
    return out


def breakdown_markdown(run: Path, conditions: tuple[str, ...] = ("mpm", "native")) -> str:
    """A table per condition: rows are question kinds, columns languages (accuracy; in
    brackets the accuracy when English answers are accepted too, where it differs)."""
    table = accuracy_by_kind(predictions(run))
    lines: list[str] = []
    for cond in conditions:
        if cond not in table:
            continue
        langs = sorted(table[cond], key=lambda code: (code != "en", code))
        kinds = sorted({k for per in table[cond].values() for k in per})
        lines += [f"#### {cond}", "",
                  "| kind | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
        for kind in kinds:
            cells = []
            for lang in langs:
                c = table[cond][lang].get(kind)
                if c is None:
                    cells.append("–")
                    continue
                extra = f" ({c['acc_any']:.2f})" if abs(c["acc_any"] - c["acc"]) >= 0.005 else ""
                cells.append(f"{c['acc']:.2f}{extra} n={c['n']}")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
