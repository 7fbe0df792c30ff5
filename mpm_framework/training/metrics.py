"""Metrics as JSON lines (one object per step, eval and end events) and a loss
curve PNG per stage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..storage import writing


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write
    return rows


def loss_curve(path: Path) -> list[tuple[int, float]]:
    """(step, loss) of every training step recorded in a metrics file."""
    return [(r["step"], r["loss"]) for r in read_metrics(path) if r.get("event") == "step"]


class MetricsWriter:
    """Appends JSON lines; on resume, first drops what came after the checkpoint
    (steps a killed run logged but never saved), so the file reads as if the
    run had never stopped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        with writing(path, "metrics file"):
            path.parent.mkdir(parents=True, exist_ok=True)
            if resume_step is None:
                path.write_text("", encoding="utf-8")
            else:
                kept = [r for r in read_metrics(path)
                        if r.get("event") in ("step", "eval") and int(r.get("step", 0)) <= resume_step]
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
                os.replace(tmp, path)
            self._file = open(path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        with writing(self.path, "metrics file"):
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a line lost to a full disk was reported by write(); read_metrics skips a cut line


def plot_loss_curve(metrics_path: Path, png_path: Path, title: str) -> Path | None:
    """Training loss (and eval loss when logged) against the step."""
    rows = read_metrics(metrics_path)
    steps = [(r["step"], r["loss"]) for r in rows if r.get("event") == "step" and r.get("loss") is not None]
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    evals = [(r["step"], r["eval"]["loss"]) for r in rows
             if r.get("event") == "eval" and isinstance(r.get("eval"), dict) and "loss" in r["eval"]]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(*zip(*steps, strict=True), label="train loss", linewidth=1)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png_path.with_name(f".{png_path.stem}.tmp.png")
    try:
        with writing(png_path, "loss curve"):
            fig.savefig(tmp)
            os.replace(tmp, png_path)
    except Exception:
        tmp.unlink(missing_ok=True)  # no half-written plot left on a full disk
        raise
    finally:
        plt.close(fig)
    return png_path
