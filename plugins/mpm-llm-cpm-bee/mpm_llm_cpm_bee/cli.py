"""``mpm cpm-bee ...``: checkpoint conversion and size facts. Torch is imported inside the commands."""

from __future__ import annotations

import click

from mpm_framework.config.choices import DTYPES


@click.group("cpm-bee")
def cpm_bee() -> None:
    """CPM-Bee checkpoints: convert, inspect, memory per size."""


@cpm_bee.command("convert")
@click.argument("src", type=click.Path(exists=True))
@click.argument("dst", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(DTYPES), default=None,
              help="Cast the weights (default: keep the file's dtype).")
@click.option("--vocab", type=click.Path(exists=True, dir_okay=False), default=None,
              help="vocab.txt to copy beside the weights (default: the one beside SRC, if any).")
def convert_cmd(src: str, dst: str, dtype: str | None, vocab: str | None) -> None:
    """Write SRC (an official .pt/.bin, a VisCPM checkpoint or safetensors) as
    DST/model.safetensors in the official key layout, with config.json."""
    from .checkpoint import convert

    click.echo(f"reading {src}", err=True)
    out = convert(src, dst, dtype=dtype, vocab=vocab, progress=True)
    click.echo(f"wrote {out}")


@cpm_bee.command("inspect")
@click.argument("src", type=click.Path(exists=True))
def inspect_cmd(src: str) -> None:
    """Print the architecture a checkpoint holds (read from its keys and shapes)."""
    import json

    from .checkpoint import load_checkpoint
    from .sizing import parameter_count

    _, arch = load_checkpoint(src)
    info = arch.to_official()
    info["attention_layers"] = len(arch.attention_layers)
    info["ffn_layers"] = len(arch.ffn_layers)
    info["parameters"] = parameter_count(arch)["total"]
    info.pop("mask_modules", None)
    click.echo(json.dumps(info, indent=2))


@cpm_bee.command("sizes")
def sizes_cmd() -> None:
    """Parameters and memory of each named size (weights; 16-bit KV cache per 1k
    tokens; full fine-tuning with Adam at 16 bytes/parameter, activations excluded)."""
    from .sizing import memory_table

    click.echo(memory_table())
