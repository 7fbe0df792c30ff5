"""``mpm demo --sweep``: the grid, what is recorded, resume, and the console of a run."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner
from mpm_toyworld.profiles import get_profile
from mpm_toyworld.sweep import expand_grid, parse_sweeps, point_name

from mpm_framework.cli.main import cli
from mpm_framework.errors import ConfigError

# the micro profile: every stage runs, a handful of steps each
MICRO = ["pretrain_steps=3", "align_steps=2", "instruct_steps=2", "corpus_documents=80", "align_samples=32",
         "instruct_samples=32", "eval_scenes=3", "probe_scenes=0", "pretrain_batch=8", "align_batch=8",
         "instruct_batch=8", "max_new_tokens=6", "export_records=0"]


def test_grid_expansion_and_checks():
    quick = get_profile("quick")
    axes = parse_sweeps(["calibration_share=0,0.02", "llm_layers=1,2,3"], quick)
    assert axes == [("calibration_share", ["0", "0.02"]), ("llm_layers", ["1", "2", "3"])]
    grid = expand_grid(axes)
    assert len(grid) == 6 and grid[0] == {"calibration_share": "0", "llm_layers": "1"}
    assert grid[-1] == {"calibration_share": "0.02", "llm_layers": "3"}
    assert point_name(grid[1]) == "calibration_share=0,llm_layers=2"
    assert expand_grid([]) == [{}]
    for bad, message in [(["calibraton_share=0"], "Did you mean 'calibration_share'"),
                         (["llm_layers=1,two"], "expects int"), (["seeds=0,1"], "--seeds N"),
                         (["llm_layers"], "KEY=V1,V2"), (["llm_layers=1", "llm_layers=2"], "twice"),
                         (["llm_layers=1,1"], "listed twice")]:
        with pytest.raises(ConfigError, match=message):
            parse_sweeps(bad, quick)


def _sweep(out, *extra):
    return CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1", "--threads", "1",
                                    "--quiet", "--conditions", "mpm,no-pivot", "--seeds", "1",
                                    "--sweep", "instruct_steps=1,2", *extra, *MICRO])


def test_sweep_records_every_point_and_resumes(tmp_path, packs):
    out = tmp_path / "sweep"
    result = _sweep(out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert record["grid"] == [{"key": "instruct_steps", "values": ["1", "2"]}] and record["seeds"] == [0]
    assert [p["point"] for p in record["points"]] == [{"instruct_steps": "1"}, {"instruct_steps": "2"}]
    first = record["points"][0]
    assert first["settings"]["instruct_steps"] == 1 and first["settings"]["pretrain_steps"] == 3
    assert first["status"] == "ran"
    ci = first["ci"]["mpm"]["de"]["caption_f1"]
    assert ci["low"] <= ci["mean"] <= ci["high"] and ci["n"] == 3
    assert first["table"]["mpm"]["de"]["caption_f1"]["mean"] == pytest.approx(ci["mean"])
    for metric in ("caption_f1", "vqa_acc", "lang_rate"):
        for lang in ("en", "de"):
            assert (out / "plots" / f"{metric}-{lang}.png").read_bytes()[:4] == b"\x89PNG"

    table = (out / "sweep.md").read_text(encoding="utf-8")
    assert "## mpm: " in table and "| instruct_steps | en | de |" in table
    section = table.split("## mpm: Caption attribute F1 (`caption_f1`)")[1].split("##")[0]
    row = next(line for line in section.splitlines() if line.startswith("| 1 |"))
    assert row.endswith(f"| {ci['mean']:.2f} [{ci['low']:.2f}, {ci['high']:.2f}] |")

    # the second point differs only in an instruct setting: it reused the first point's pivots and alignments
    second = record["points"][1]
    assert first["reused"] == {} and second["reused"]["seed0"]["stage"] == "align"
    assert second["reused"]["seed0"]["from"] == first["out"]
    assert "align reused from" in result.output

    # the recorded command re-runs that point alone, in its folder (here: nothing left to do)
    args = shlex.split(first["command"])
    assert args[:2] == ["mpm", "demo"] and "instruct_steps=1" in args and first["out"] in args
    alone = CliRunner().invoke(cli, [*args[1:], "--resume", "--workers", "1", "--quiet"])
    assert alone.exit_code == 0, alone.output
    assert "resume: 6 of 6 jobs already done" in alone.output

    # --resume: finished points are kept, not run again
    stamp = (out / "points" / "instruct_steps=2" / "results.json").stat().st_mtime_ns
    again = _sweep(out, "--resume")
    assert again.exit_code == 0, again.output
    assert again.output.count("finished earlier, kept") == 2
    assert (out / "points" / "instruct_steps=2" / "results.json").stat().st_mtime_ns == stamp
    kept = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["status"] for p in kept] == ["kept", "kept"]
    assert kept[1]["reused"]["seed0"]["stage"] == "align"  # what the kept run reused stays on record

    # other base settings: refused, nothing overwritten
    changed = CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1", "--quiet",
                                       "--conditions", "mpm,no-pivot", "--seeds", "1", "--resume",
                                       "--sweep", "instruct_steps=1,2", *MICRO, "align_steps=3"])
    assert changed.exit_code != 0 and "other overrides" in changed.output and "Traceback" not in changed.output
    # a point folder whose run used other settings: refused with what to do
    settings = out / "points" / "instruct_steps=1" / "settings.json"
    data = json.loads(settings.read_text())
    data["profile"]["eval_scenes"] = 99
    settings.write_text(json.dumps(data))
    tampered = _sweep(out, "--resume")
    assert tampered.exit_code != 0 and "remove that folder to recompute it" in tampered.output
    assert (out / "points" / "instruct_steps=2" / "results.json").stat().st_mtime_ns == stamp


def test_a_reused_stage_gives_the_same_results_as_running_it(tmp_path, packs):
    """Reuse is only a saving: point 2 of a sweep (pivots and alignments linked from
    point 1) predicts exactly what the same point run alone from scratch predicts."""
    out = tmp_path / "sweep"
    result = _sweep(out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    second = record["points"][1]
    assert second["reused"]["seed0"]["stage"] == "align"
    alone = tmp_path / "alone"
    args = shlex.split(second["command"].replace(second["out"], str(alone)))
    ran = CliRunner().invoke(cli, [*args[1:], "--workers", "1", "--threads", "1", "--quiet"])
    assert ran.exit_code == 0, ran.output
    for cond in ("mpm", "no-pivot"):
        reused = (out / "points" / "instruct_steps=2" / "seed0" / "conditions" / cond / "eval"
                  / "predictions.jsonl").read_text(encoding="utf-8")
        fresh = (alone / "seed0" / "conditions" / cond / "eval" / "predictions.jsonl").read_text(encoding="utf-8")
        assert reused == fresh
    # a setting an earlier stage reads is never reused across: a pretrain change retrains the pivots
    from mpm_toyworld.profiles import apply_overrides
    from mpm_toyworld.reuse import candidate_points, reuse_stages

    base = apply_overrides(get_profile("quick"), [*MICRO, "instruct_steps=2"]).replace(seeds=[0])
    points = candidate_points(out)
    assert reuse_stages(tmp_path / "a", base.replace(instruct_lr=1.0), ["de"], ["mpm", "no-pivot"],
                        points)["seed0"]["stage"] == "align"
    assert reuse_stages(tmp_path / "b", base.replace(align_lr=1.0), ["de"], ["mpm", "no-pivot"],
                        points)["seed0"]["stage"] == "pretrain"
    assert not (tmp_path / "b" / "seed0" / "align").exists()
    assert reuse_stages(tmp_path / "c", base.replace(pretrain_steps=2), ["de"], ["mpm", "no-pivot"], points) == {}
    # naming a low-resource language at share 1 changes nothing, so it does not stop reuse
    assert reuse_stages(tmp_path / "e", base.replace(low_resource_lang="de"), ["de"], ["mpm", "no-pivot"],
                        points)["seed0"]["stage"] == "align"
    assert reuse_stages(tmp_path / "f", base.replace(low_resource_lang="de", low_resource_share=0.5), ["de"],
                        ["mpm", "no-pivot"], points) == {}
    assert reuse_stages(tmp_path / "d", base, ["fr"], ["mpm", "no-pivot"], points) == {}
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_every_setting_has_a_stage():
    """A new profile setting must say which stage reads it first (reuse.py relies on it)."""
    import dataclasses

    from mpm_toyworld.profiles import ALIGN_SETTINGS, INSTRUCT_SETTINGS, PRETRAIN_SETTINGS, Profile

    fields = {f.name for f in dataclasses.fields(Profile)} - {"name", "seeds"}
    sets = (PRETRAIN_SETTINGS, ALIGN_SETTINGS, INSTRUCT_SETTINGS)
    assert set().union(*sets) == fields
    assert sum(len(s) for s in sets) == len(fields)  # each in exactly one


def test_console_shows_the_job_graph_and_ends_with_the_headline(tmp_path, packs):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1",
                                      "--threads", "1", *MICRO])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "trainable set" not in text and "stage '" not in text  # per-stage tables are in the job logs
    assert "trainable set" in (out / "seed0" / "logs" / "instruct-mpm.log").read_text(encoding="utf-8")
    tail = text.strip().splitlines()
    assert tail[-1].startswith(f"report: {out / 'results.md'}")
    assert "### Headline: mpm vs no-pivot vs native" in text and "| de | vqa_acc |" in text
    assert "1 worker process(es) x 1 thread(s)" in text
    assert "Workers: 1 process(es) × 1 torch thread(s)" in (out / "results.md").read_text(encoding="utf-8")
    summary = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert summary["environment"]["threads_per_worker"] == 1 and summary["environment"]["cores_available"] >= 1
    # --verbose brings the detail back
    loud = CliRunner().invoke(cli, ["demo", "--langs", "de", "--out", str(out), "--workers", "1", "--threads", "1",
                                    "--verbose", "--resume", "--quiet", *MICRO])
    assert loud.exit_code == 0 and "### VQA accuracy" in loud.output


def test_worker_threads_are_their_share_of_the_available_cores(monkeypatch):
    import os

    from mpm_toyworld import console

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert console.available_cores() == 6  # the affinity mask, not os.cpu_count()
    assert [console.threads_per_worker(w) for w in (1, 2, 4, 8)] == [6, 3, 1, 1]
    assert console.threads_per_worker(2, cores=2) == 1


def test_sweep_plots_show_understanding_in_english_when_it_differs(tmp_path):
    """The quasi-zero-shot effect in a plot: where answers are right in English but not
    in the asked language, the *_any mean is drawn along the scored line."""
    from mpm_toyworld.sweep import _english_accepted, plot_sweep

    def point(lr, score, anyway):
        ci = {"mean": score, "low": score - 0.05, "high": score + 0.05, "n": 10}
        return {"point": {"instruct_lr": lr, "calibration_share": "0"},
                "ci": {"mpm": {"de": {"vqa_acc": ci}}},
                "table": {"mpm": {"de": {"vqa_acc_any": {"mean": anyway, "std": 0.0, "n": 2}}}}}

    record = {"grid": [{"key": "instruct_lr", "values": ["0.0001", "0.003"]},
                       {"key": "calibration_share", "values": ["0"]}],
              "points": [point("0.003", 0.1, 0.56), point("0.0001", 0.5, 0.5)],
              "conditions": ["mpm"], "langs": ["de"], "seeds": [0, 1]}
    line = _english_accepted(record["points"], record["grid"][0], ["calibration_share"], ("0",), "mpm", "de",
                             "vqa_acc")
    assert line == [(0.0001, 0.5), (0.003, 0.56)]
    assert (tmp_path / "vqa_acc-de.png") in plot_sweep(record, tmp_path)
