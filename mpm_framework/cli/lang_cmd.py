"""``mpm lang``: add, list and prepare language packs."""

from __future__ import annotations

import subprocess
import sys

import click

from ..errors import MPMError


@click.group()
def lang() -> None:
    """Language packs: list, install, download tokenizer models."""


@lang.command("list")
def list_languages() -> None:
    """Installed language packs."""
    from ..plugins import get_registry

    for reg in get_registry().entries["language"].values():
        click.echo(f"{reg.name:<6} {reg.description or ', '.join(reg.aliases)}  [{reg.plugin}]")


@lang.command("install")
@click.argument("codes", nargs=-1, required=True)
@click.option("--upgrade", "-U", is_flag=True, help="Upgrade if already installed.")
def install(codes: tuple[str, ...], upgrade: bool) -> None:
    """pip-install language packs into this environment: `mpm lang install de fr`.

    A code becomes the distribution `mpm-lang-CODE`; a path or a full
    requirement is passed to pip as it is."""
    reqs = [c if ("/" in c or c.startswith("mpm-") or "." in c) else f"mpm-lang-{c}" for c in codes]
    cmd = [sys.executable, "-m", "pip", "install", *(["--upgrade"] if upgrade else []), *reqs]
    click.echo("$ " + " ".join(cmd))
    if subprocess.call(cmd) != 0:
        raise MPMError(f"pip could not install {' '.join(reqs)} (see pip's message above)")


@lang.command("download")
@click.argument("code")
@click.option("--dir", "model_dir", default=None, help="stanza resources directory.")
def download(code: str, model_dir: str | None) -> None:
    """Download stanza's models for CODE (needs a network), for the full pipeline."""
    from ..text.stanza_route import download_models

    where = download_models(code, model_dir)
    click.echo(f"stanza models for {code} are in {where}")
