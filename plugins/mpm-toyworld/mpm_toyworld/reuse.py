"""Sweep points share the work their settings allow (torch-free).

A sweep over ``calibration_share`` changes only the instruct stage: without
reuse every point pretrains its pivots and aligns its vision tower again,
about 90% of a point's time. Before a point runs, :func:`reuse_stages` finds
an earlier point (of this sweep, or of the sweeps given with ``--reuse-from``)
whose settings differ only in what a later stage reads (``profiles.py``:
``ALIGN_SETTINGS``, ``INSTRUCT_SETTINGS``), and hard-links its finished
pivots -- and alignments, when only instruct settings differ -- into the new
point's seed folders with their job records. The point then runs as a
``--resume`` of itself: the job graph skips what is there, exactly as after an
interruption. Same seed and same upstream settings give the same files (runs
are seeded, ``test_training_seed``), so the results do not depend on whether a
stage was reused; the point's record says what was reused and from where.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .conditions import CONDITIONS
from .profiles import ALIGN_SETTINGS, INSTRUCT_SETTINGS, Profile


def _settings(profile: Profile, ignore: frozenset[str]) -> dict[str, Any]:
    settings = {k: v for k, v in json.loads(json.dumps(asdict(profile))).items()
                if k not in ignore and k not in ("name", "seeds")}
    if settings.get("low_resource_share") == 1.0:  # no language down-weighted: which one is named does not matter
        settings["low_resource_lang"] = ""
    return settings


def upstream_key(profile: Profile, stage: str) -> str:
    """The settings that decide the output of ``stage`` (``pretrain`` or ``align``) and of
    everything before it, as a canonical string."""
    ignore = ALIGN_SETTINGS | INSTRUCT_SETTINGS if stage == "pretrain" else INSTRUCT_SETTINGS
    return json.dumps(_settings(profile, ignore), sort_keys=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard links where the file system allows (checkpoints are not copied), copies elsewhere."""
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def _finished(seed_dir: Path, kind: str, name: str) -> bool:
    return (seed_dir / "jobs" / f"{kind}-{name}.json").is_file()


def _stage_jobs(conditions: list[str], stage: str) -> list[tuple[str, str, str]]:
    """``(kind, name, folder)`` of the jobs of ``stage`` and before, for these conditions."""
    conds = [CONDITIONS[c] for c in conditions]
    jobs = [("pretrain", pivot, f"pivots/{pivot}") for pivot in dict.fromkeys(c.pivot for c in conds)]
    if stage == "align":
        pairs = dict.fromkeys((c.pivot, c.align) for c in conds)
        jobs += [("align", f"{pivot}-{align}", f"align/{pivot}-{align}") for pivot, align in pairs]
    return jobs


def reuse_stages(point_out: Path, profile: Profile, langs: list[str], conditions: list[str],
                 candidates: list[Path]) -> dict[str, dict[str, str]]:
    """Link the finished stages of the first matching earlier point (per seed) into
    ``point_out``; returns ``{"seed<k>": {"stage": ..., "from": folder}}`` for the record."""
    reused: dict[str, dict[str, str]] = {}
    for seed in profile.seeds:
        mine = point_out / f"seed{seed}"
        if (mine / "jobs").is_dir() and any((mine / "jobs").iterdir()):
            continue  # the point has work of its own (an interrupted run): resume handles it
        for stage in ("align", "pretrain"):
            source = _matching(candidates, profile, langs, seed, stage, conditions)
            if source is None:
                continue
            theirs = source / f"seed{seed}"
            _link_tree(theirs / "pivot-init", mine / "pivot-init")
            (mine / "jobs").mkdir(parents=True, exist_ok=True)
            for kind, name, folder in _stage_jobs(conditions, stage):
                _link_tree(theirs / folder, mine / folder)
                shutil.copy2(theirs / "jobs" / f"{kind}-{name}.json", mine / "jobs" / f"{kind}-{name}.json")
            reused[f"seed{seed}"] = {"stage": stage, "from": str(source)}
            break
    return reused


def _matching(candidates: list[Path], profile: Profile, langs: list[str], seed: int, stage: str,
              conditions: list[str]) -> Path | None:
    want = upstream_key(profile, stage)
    for folder in candidates:
        settings_file = folder / "settings.json"
        if not settings_file.is_file():
            continue
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        if settings.get("langs") != langs:
            continue
        try:
            theirs = Profile(**settings["profile"])
        except TypeError:  # a run of an older profile (settings since added or removed)
            continue
        if upstream_key(theirs, stage) != want:
            continue
        seed_dir = folder / f"seed{seed}"
        if all(_finished(seed_dir, kind, name) for kind, name, _ in _stage_jobs(conditions, stage)):
            return folder
    return None


def candidate_points(*sweep_dirs: Path) -> list[Path]:
    """Point folders of the given sweeps (each ``<sweep>/points/*``), in a stable order."""
    found: list[Path] = []
    for sweep in sweep_dirs:
        if (sweep / "points").is_dir():
            found += sorted(p for p in (sweep / "points").iterdir() if p.is_dir())
        elif (sweep / "settings.json").is_file():  # a single demo run
            found.append(sweep)
    return found
