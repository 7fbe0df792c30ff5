"""``mpm import FORMAT PATH --out RUN_DIR``: a released checkpoint -> a run folder."""

from __future__ import annotations

import click

from ..errors import ConfigError


def parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``-o key=value`` pairs (repeatable) -> a dict of the format's options."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"option {pair!r} is not of the form key=value")
        out[key.strip().replace("-", "_")] = value
    return out


@click.command("import")
@click.argument("format_name", metavar="FORMAT")
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="The run folder to write (loads with --checkpoint and load_run).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A format option (repeatable), e.g. -o vocab=bee.txt -o dtype=fp16.")
def import_(format_name: str, path: str, out: str, options: tuple[str, ...]) -> None:
    """Turn a checkpoint of another format into an MPM run folder.

    \b
    mpm import viscpm VisCPM-Chat/pytorch_model.v1.bin --out runs/viscpm -o vocab=bee.txt
    mpm import llava-hf llava-1.5-7b-hf/ --out runs/llava
    mpm compose chat --checkpoint runs/llava --image cat.jpg "What is this?"
    """
    from ..formats import get_format

    fmt = get_format(format_name, "import")
    result = fmt.run_import(path, out, **parse_options(options))
    click.echo(f"imported {path} ({fmt.name}) -> {result}")
