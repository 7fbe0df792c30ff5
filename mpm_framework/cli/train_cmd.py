"""``mpm compose ... train``."""

from __future__ import annotations

import click

from ..security import trust_remote_code_option

ENGINES = ("single", "ddp", "deepspeed")


@click.command("train")
@click.option("--stage", help="Stage to train (align, instruct, pretrain, paint, ...), a comma-separated "
                              "chain (align,instruct) or 'all' (the recipe's stages: section). Default: run.stage.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint (same data order, RNG, optimizer).")
@click.option("--nproc", type=int, help="Processes to start through torchrun (default: run.nproc).")
@click.option("--engine", type=click.Choice(ENGINES), help="single, ddp (torch DDP) or deepspeed (ZeRO).")
@click.option("--zero-stage", type=click.IntRange(0, 3), help="DeepSpeed ZeRO stage (default: run.zero_stage).")
@click.option("--deepspeed-config", type=click.Path(dir_okay=False), help="JSON merged over the shipped ZeRO config.")
@click.option("--output-dir", help="Run folder (default: run.output_dir).")
@click.option("--no-progress", is_flag=True, help="Plain log lines instead of a progress bar.")
@click.argument("overrides", nargs=-1)
@trust_remote_code_option
@click.pass_obj
def train(spec, stage, resume, nproc, engine, zero_stage, deepspeed_config, output_dir, no_progress,
          overrides) -> None:
    """Train the composed stack in MPM stages.

    \b
    Examples:
      mpm compose --llm cpm-bee --vision beit3 --lang zh --config recipe.yaml train --stage align
      mpm compose --config recipe.yaml train --stage all --nproc 4 --engine deepspeed
      mpm compose --config recipe.yaml train --stage align --resume

    Before anything is built, the config is checked (data set and readable, paths,
    the stage's components, a writable run folder) and the presets in use are printed.

    The run folder (run.output_dir) gets, per stage, the resolved config, checkpoints,
    metrics.jsonl, loss_curve.png and final/model.safetensors; `load_run(folder)`
    rebuilds the trained stack for inference.
    """
    extra = list(overrides)
    for key, value in (("run.engine", engine), ("run.zero_stage", zero_stage),
                       ("run.deepspeed_config", deepspeed_config), ("run.output_dir", output_dir)):
        if value is not None:
            extra.append(f"{key}={value}")
    if stage and "," not in stage and stage != "all":
        extra.append(f"run.stage={stage}")
    cfg = spec.resolve(extra)

    from ..training.preflight import preflight, preset_summary, stage_list

    presets = preset_summary(cfg)
    if presets:
        click.echo(f"presets: {presets}", err=True)
    # Everything the config alone can tell is checked before a model is built.
    preflight(cfg, stage_list(cfg, stage), resume=resume or bool(cfg.run.resume))

    from ..training.launch import train_from_config

    results = train_from_config(cfg, stage, resume=resume, nproc=nproc, progress=not no_progress)
    for result in results or []:
        loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
        click.echo(f"{result.stage}: {result.steps} steps, final loss {loss}, "
                   f"{result.data.get('skipped', 0)} of {result.data.get('seen', 0)} records skipped "
                   f"-> {result.run_dir}")
