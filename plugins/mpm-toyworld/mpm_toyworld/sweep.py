"""``mpm demo --sweep KEY=V1,V2 ... --seeds N``: a grid of profile settings x seeds.

Every point of the grid is an ordinary demo run (the job graph of
``experiment.py``, its workers and ``--resume``) in ``<out>/points/<point>/``,
with the sweep's base overrides plus the point's values. The sweep writes

- ``sweep.json``: the grid, then per point its values, the full profile it
  ran with, the exact command that re-runs that point alone, its means and
  95% CIs (bootstrap over held-out scenes and seeds, ``stats.py``) per
  condition, language and metric -- rewritten after every point;
- ``plots/<metric>-<lang>.png``: the metric against the first swept setting,
  a line per condition (and per value of the other swept settings) with its
  CI band, and dashed where it differs the mean with English answers accepted;
- ``sweep.md``: the same numbers as tables (``sweep_report.py``).

A point reuses an earlier point's pivots and alignments when its settings
differ only in later stages (``reuse.py``; ``--reuse-from`` adds other sweeps).

``--resume`` keeps every point whose run finished with the same settings;
the base settings (profile, overrides, languages, seeds, conditions) of the
sweep itself must match, otherwise it is refused (choose another --out).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mpm_framework.errors import ConfigError, MPMError

from .profiles import Profile, apply_overrides

# Settings a sweep cannot vary: seeds are the replicate axis (--seeds N).
_NOT_SWEPT = {"name": "the profile is --profile", "seeds": "seeds are the replicate axis: use --seeds N"}


def parse_sweeps(items: list[str], base: Profile) -> list[tuple[str, list[str]]]:
    """``["KEY=V1,V2", ...]`` -> ``[(KEY, [V1, V2]), ...]``, every value checked
    against the profile's setting types (a typo fails before anything runs)."""
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not raw.strip():
            raise ConfigError(f"--sweep {item!r} is not of the form KEY=V1,V2,...")
        if key in _NOT_SWEPT:
            raise ConfigError(f"--sweep {key}: {_NOT_SWEPT[key]}")
        if any(key == k for k, _ in axes):
            raise ConfigError(f"--sweep {key} is given twice; list all its values in one --sweep")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(set(values)) != len(values):
            raise ConfigError(f"--sweep {key}: a value is listed twice ({raw})")
        for v in values:
            apply_overrides(base, [f"{key}={v}"])  # unknown key / wrong type: a clear ConfigError
        axes.append((key, values))
    return axes


def expand_grid(axes: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination, the first axis varying slowest: ``[{KEY: V, ...}, ...]``."""
    if not axes:
        return [{}]
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in axes))]


def point_name(point: dict[str, str]) -> str:
    """A folder name for a point: ``calibration_share=0.02,corpus_cross_share=0``."""
    name = ",".join(f"{k}={v}" for k, v in point.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)


def point_command(profile: str, langs: list[str], out: Path, seeds: list[int], conditions: list[str] | None,
                  overrides: list[str]) -> str:
    """The ``mpm demo`` command that runs this point alone (into the same folder)."""
    cmd = ["mpm", "demo", "--profile", profile, "--langs", ",".join(langs), "--out", str(out),
           "--seed", ",".join(map(str, seeds))]
    if conditions:
        cmd += ["--conditions", ",".join(conditions)]
    return shlex.join(cmd + overrides)


def _base_record(profile: str, overrides: list[str], axes: list[tuple[str, list[str]]], seeds: list[int],
                 langs: list[str], conditions: list[str]) -> dict[str, Any]:
    return {"profile": profile, "overrides": overrides, "seeds": seeds, "langs": langs, "conditions": conditions,
            "grid": [{"key": k, "values": v} for k, v in axes]}


def _point_done(out: Path, profile: Profile, langs: list[str]) -> dict[str, Any] | None:
    """The finished run's summary when ``out`` holds one of exactly these settings."""
    results, settings = out / "results.json", out / "settings.json"
    if not results.is_file() or not settings.is_file():
        return None
    old = json.loads(settings.read_text(encoding="utf-8"))
    if old.get("profile") != json.loads(json.dumps(asdict(profile))) or old.get("langs") != langs:
        raise MPMError(f"--resume: {out} holds a run with other settings than this sweep point "
                       "(the profile's defaults changed?); remove that folder to recompute it, or use "
                       "another --out")
    return json.loads(results.read_text(encoding="utf-8"))


def run_sweep(*, profile: Profile, profile_name: str, overrides: list[str], sweeps: list[str], seeds: list[int],
              langs: list[str], out: Path, conditions: list[str] | None, workers: int, threads: int,
              resume: bool, progress: bool, verbose: bool, reuse_from: list[Path] | None = None,
              log=print) -> dict[str, Any]:
    """Run every point of the grid (see the module docstring); returns ``sweep.json``'s content."""
    from .conditions import CONDITIONS
    from .experiment import Demo, DemoSettings
    from .reuse import candidate_points, reuse_stages

    axes = parse_sweeps(sweeps, profile)
    grid = expand_grid(axes)
    conds = conditions or list(CONDITIONS)
    base = _base_record(profile_name, overrides, axes, seeds, langs, conds)
    out.mkdir(parents=True, exist_ok=True)
    record_file = out / "sweep.json"
    earlier_record: dict[str, Any] = {}  # point -> its entry in the sweep.json being resumed
    if resume and record_file.is_file():
        old = json.loads(record_file.read_text(encoding="utf-8"))
        earlier_record = {point_name(p["point"]): p for p in old.get("points", [])}
        for key in ("profile", "overrides", "seeds", "langs", "conditions"):
            if old.get(key) != base[key]:
                raise MPMError(f"--resume: {out} holds a sweep with other {key} ({old.get(key)} vs {base[key]}); "
                               "continue it with the same options or choose another --out")
    record: dict[str, Any] = {**base, "points": []}
    log(f"sweep: {len(grid)} point(s) x {len(seeds)} seed(s) in {out}")
    for i, point in enumerate(grid, 1):
        point_overrides = [*overrides, *(f"{k}={v}" for k, v in point.items())]
        prof = apply_overrides(profile, point_overrides).replace(seeds=list(seeds))
        point_out = out / "points" / point_name(point)
        command = point_command(profile_name, langs, point_out, seeds, conditions, point_overrides)
        summary = _point_done(point_out, prof, langs) if resume else None
        status, reused = "kept", {}
        if summary is None:
            status = "ran"
            # this sweep's earlier points first, then the other sweeps named with --reuse-from
            earlier = [Path(p["out"]) for p in record["points"]] + candidate_points(*(reuse_from or []))
            reused = reuse_stages(point_out, prof, langs, conds, earlier)
            log(f"sweep point {i}/{len(grid)}: {point_name(point)}"
                + "".join(f"; {seed}: {r['stage']} reused from {r['from']}" for seed, r in reused.items()))
            settings = DemoSettings(profile=prof, langs=langs, out=point_out, conditions=conds,
                                    progress=progress, workers=workers, threads=threads,
                                    resume=resume or bool(reused), command=command, verbose=verbose)
            summary = Demo(settings).run()
        else:
            reused = earlier_record.get(point_name(point), {}).get("reused", {})  # what the kept run reused
            log(f"sweep point {i}/{len(grid)}: {point_name(point)} finished earlier, kept")
        record["points"].append({
            "point": point, "status": status, "reused": reused, "command": command, "out": str(point_out),
            "settings": json.loads(json.dumps(asdict(prof))),
            "table": {c: {lang: {m: {"mean": v["mean"], "std": v["std"], "n": v["n"]} for m, v in per.items()}
                          for lang, per in per_lang.items()} for c, per_lang in summary["table"].items()},
            "ci": summary.get("ci", {}), "headline": summary.get("headline", []),
            "total_s": summary.get("total_s"),
        })
        _write(record_file, record)  # after every point: an interrupted sweep keeps what it finished
    paths = plot_sweep(record, out / "plots")
    record["plots"] = [str(p) for p in paths]
    _write(record_file, record)
    from .sweep_report import write_sweep_markdown

    table = write_sweep_markdown(record, out / "sweep.md")
    log(f"sweep: {record_file}, the tables in {table} and {len(paths)} plot(s) in {out / 'plots'}")
    return record


def _write(path: Path, data: Any) -> None:
    from .report import _clean

    path.write_text(json.dumps(_clean(data), indent=2, ensure_ascii=False), encoding="utf-8")


def _x(values: list[str]) -> tuple[list[float], bool]:
    try:
        return [float(v) for v in values], True
    except ValueError:
        return list(map(float, range(len(values)))), False


def _english_accepted(points: list[dict[str, Any]], first: dict[str, Any], others: list[str], rest: tuple[str, ...],
                      cond: str, lang: str, metric: str) -> list[tuple[float, float]]:
    """``(x, mean)`` of ``<metric>_any`` (content in English accepted too) along one line, sorted by x."""
    xs, _ = _x(first["values"])
    out = []
    for p in points:
        if tuple(p["point"][k] for k in others) != rest:
            continue
        value = p.get("table", {}).get(cond, {}).get(lang, {}).get(f"{metric}_any", {}).get("mean")
        if value is not None:
            out.append((xs[first["values"].index(p["point"][first["key"]])], value))
    return sorted(out)


def plot_sweep(record: dict[str, Any], folder: Path) -> list[Path]:
    """A line plot per metric and language: the metric against the first swept
    setting, one line per condition (x the other settings' values), 95% CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import TITLES
    from .stats import SCENE_METRICS

    points = record["points"]
    if not points or not record["grid"]:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    first, others = record["grid"][0], [g["key"] for g in record["grid"][1:]]
    xs, numeric = _x(first["values"])
    paths = []
    for metric in SCENE_METRICS:
        for lang in ["en", *(c for c in record["langs"] if c != "en")]:
            fig, ax = plt.subplots(figsize=(5.2, 3.6))
            for cond in record["conditions"]:
                groups: dict[tuple[str, ...], list[tuple[float, dict[str, Any]]]] = {}
                for p in points:
                    ci = p["ci"].get(cond, {}).get(lang, {}).get(metric)
                    if ci and ci.get("mean") is not None:
                        x = xs[first["values"].index(p["point"][first["key"]])]
                        groups.setdefault(tuple(p["point"][k] for k in others), []).append((x, ci))
                for rest, line in groups.items():
                    line.sort(key=lambda t: t[0])
                    label = cond + "".join(f", {k}={v}" for k, v in zip(others, rest))
                    xv = [t[0] for t in line]
                    shown = ax.plot(xv, [t[1]["mean"] for t in line], marker="o", label=label)[0]
                    ax.fill_between(xv, [t[1]["low"] for t in line], [t[1]["high"] for t in line],
                                    color=shown.get_color(), alpha=0.2)
                    anyway = _english_accepted(points, first, others, rest, cond, lang, metric)
                    if anyway and any(abs(a - t[1]["mean"]) >= 0.01 for (_, a), t in zip(anyway, line)):
                        # understood but answered in English (the quasi-zero-shot effect): dashed
                        ax.plot([x for x, _ in anyway], [a for _, a in anyway], linestyle="--", marker=".",
                                color=shown.get_color(), label=f"{label}, English answers accepted")
            if not numeric:
                ax.set_xticks(xs, first["values"])
            ax.set_xlabel(first["key"])
            ax.set_ylabel(metric)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{TITLES.get(metric, metric)} — {lang} (95% CI, {len(record['seeds'])} seed(s))",
                         fontsize=9)
            if ax.lines:
                ax.legend(fontsize=7)
            fig.tight_layout()
            path = folder / f"{metric}-{lang}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths
