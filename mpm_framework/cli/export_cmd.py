"""``mpm export RUN_DIR --format F --out DIR``: a run folder -> another format."""

from __future__ import annotations

import click

from .import_cmd import parse_options


@click.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "format_name", required=True, help="Target format (e.g. llava-hf).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--stage", default=None, help="Export this stage of the run (default: the last finished).")
@click.option("--adapter", is_flag=True, default=False,
              help="LoRA runs: write the adapter (PEFT) beside the base model instead of merging it.")
@click.option("--max-shard-size", default="2GB", show_default=True,
              help="Split weights into safetensors shards of at most this size (with an index).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="A format option (repeatable).")
def export(run_dir: str, format_name: str, out: str, stage: str | None, adapter: bool, max_shard_size: str,
           options: tuple[str, ...]) -> None:
    """Write a trained run in another format (with a model card).

    \b
    mpm export runs/llava-de --format llava-hf --out export/llava-de
    """
    from ..formats import get_format

    fmt = get_format(format_name, "export")
    extra = parse_options(options)
    result = fmt.run_export(run_dir, out, stage=stage, adapter=adapter, max_shard_size=max_shard_size, **extra)
    click.echo(f"exported {run_dir} ({fmt.name}) -> {result}")
