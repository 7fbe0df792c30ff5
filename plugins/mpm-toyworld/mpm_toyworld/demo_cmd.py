"""``mpm demo``: the whole MPM experiment on the toy world (registered by this plugin)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from mpm_framework.errors import MPMError


def _split(_ctx, _param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("demo")
@click.option("--profile", default="quick", show_default=True,
              help="quick (about 5 min on 2 CPU cores, checks the pipeline) or full (longer training, "
                   "3 seeds, mean ± spread; the README's table).")
@click.option("--langs", callback=_split, default=None,
              help="Target languages, comma-separated (default: zh, de, fr for the quick profile, every "
                   "installed pack with a toy grammar for the others; English is always evaluated).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Run directory: configs, checkpoints, predictions, results.md/.json/.png.")
@click.option("--seed", "seeds", callback=_split, default=None,
              help="Seed(s), comma-separated (default: the profile's).")
@click.option("--seeds", "n_seeds", type=int, default=None,
              help="Number of seeds: 0..N-1 (instead of --seed); with --sweep, every point runs them all.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2,...",
              help="Sweep a profile setting over values (repeatable: the grid of all combinations). Each "
                   "point is a demo run in <out>/points/; <out>/sweep.json holds every point's settings, "
                   "results with 95% CIs and the command that re-runs it; <out>/plots/ a line plot per "
                   "metric and language.")
@click.option("--reuse-from", "reuse_from", multiple=True, type=click.Path(path_type=Path, exists=True,
                                                                         file_okay=False),
              help="With --sweep: another sweep's (or demo run's) folder whose finished pivots and "
                   "alignments a point may reuse when its settings differ only in later stages "
                   "(repeatable; the sweep's own earlier points are always candidates).")
@click.option("--conditions", callback=_split, default=None,
              help="Subset of conditions: mpm, mpm-cal0, no-pivot, native (default: all).")
@click.option("--workers", type=int, default=None,
              help="Worker processes running independent jobs in parallel (default: one per CPU core, "
                   "at most 2 per seed); 1 runs everything in this process.")
@click.option("--threads", type=int, default=None,
              help="torch threads per worker process (default: CPU cores / workers).")
@click.option("--paint", is_flag=True,
              help="Also run the paint experiment (text -> image, VisCPM-Paint's claim) with the MPM "
                   "pivot this run pretrained.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in --out: jobs it finished (pivots, alignments, "
                   "conditions) are kept.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--verbose", is_flag=True,
              help="Show every job's output (step bars, parameter tables, library messages) and the full "
                   "report on the terminal instead of only the job graph's progress and the headline table "
                   "(the output is otherwise in each seed's logs/ folder).")
@click.argument("overrides", nargs=-1)
def demo(profile, langs, out, seeds, n_seeds, sweeps, reuse_from, conditions, workers, threads, paint, resume, quiet,
         verbose, overrides) -> None:
    """Run the whole MPM experiment on the toy world (the mpm-toyworld plugin).

    \b
    1. pretrain two tiny Llama pivots from scratch on toy-world text in every
       language: with English<->L parallel text (mpm) and without (no-pivot);
    2. align a tiny CLIP tower + connector on English captions (LLM frozen);
    3. instruct on English VQA with 0 or a small share of target-language data;
    4. evaluate captions and VQA on held-out scenes in English and every target
       language, against the no-pivot and native conditions.

    Trailing KEY=VALUE arguments change profile settings (e.g.
    pretrain_steps=500); the settings used are saved with the results.

    \b
    Examples:
      mpm demo                               quick profile: en + zh, de, fr
      mpm demo --profile full --out runs/demo-full
      mpm demo --langs de pretrain_steps=300
    """
    from .profiles import DEFAULT_LANGS, apply_overrides, get_profile

    prof = get_profile(profile)
    prof = apply_overrides(prof, list(overrides))
    if seeds:
        try:
            prof = prof.replace(seeds=[int(s) for s in seeds])
        except ValueError:
            raise MPMError(f"--seed takes integers, got {','.join(seeds)}") from None
    if n_seeds is not None:
        if seeds:
            raise MPMError("give either --seed (a list) or --seeds N, not both")
        if n_seeds < 1:
            raise MPMError("--seeds must be at least 1")
        prof = prof.replace(seeds=list(range(n_seeds)))
    from .experiment import CONDITIONS, Demo, DemoSettings
    from .packs import installed_targets

    if langs is not None:
        targets = langs
    else:
        targets, skipped = installed_targets()
        if skipped:
            click.echo(f"not in the demo (no toy grammar): {', '.join(skipped)}", err=True)
        chosen = [c for c in DEFAULT_LANGS.get(profile, ()) if c in targets]
        if chosen:
            others = [c for c in targets if c not in chosen]
            if others:
                click.echo(f"the {profile} profile runs {', '.join(chosen)}; also installed: {', '.join(others)} "
                           "(add them with --langs)", err=True)
            targets = chosen
    if "en" in targets:
        targets = [c for c in targets if c != "en"]
    from .console import available_cores, limit_threads, threads_per_worker

    cores = available_cores()
    if workers is None:
        workers = max(1, min(cores, 2 * len(prof.seeds), 8))
    if workers < 1 or (threads is not None and threads < 1):
        raise MPMError("--workers and --threads must be at least 1")
    threads = threads or threads_per_worker(workers, cores)
    if workers == 1:
        limit_threads(threads)
    if sweeps:
        from .sweep import run_sweep

        if paint:
            raise MPMError("--paint runs with a single demo, not with --sweep")
        run_sweep(profile=get_profile(profile), profile_name=profile, overrides=list(overrides),
                  sweeps=list(sweeps), seeds=list(prof.seeds), langs=targets,
                  out=Path("runs/sweep") if out == Path("runs/demo") else out, conditions=conditions,
                  workers=workers, threads=threads, resume=resume, progress=not quiet, verbose=verbose,
                  reuse_from=list(reuse_from), log=click.echo)
        return
    if reuse_from:
        raise MPMError("--reuse-from goes with --sweep (a single run continues itself with --resume)")
    command = ["mpm", "demo"]
    if profile != "quick":
        command += ["--profile", profile]
    if langs is not None:
        command += ["--langs", ",".join(langs)]
    if out != Path("runs/demo"):
        command += ["--out", str(out)]
    if seeds:
        command += ["--seed", ",".join(seeds)]
    if n_seeds is not None:
        command += ["--seeds", str(n_seeds)]
    if conditions:
        command += ["--conditions", ",".join(conditions)]
    if paint:
        command.append("--paint")
    command += list(overrides)
    settings = DemoSettings(
        profile=prof, langs=targets, out=out, conditions=conditions or list(CONDITIONS),
        progress=not quiet, workers=workers, threads=threads, paint=paint, resume=resume,
        command=shlex.join(command), verbose=verbose,
    )
    Demo(settings).run()
