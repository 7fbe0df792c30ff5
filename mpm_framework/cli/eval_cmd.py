"""``mpm compose ... eval``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("eval", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def evaluate(spec, args) -> None:
    """Evaluate per language (caption, vqa, language-rate, alignment)."""
    raise MPMError("'eval' is not available yet (tracked in issue 8)")
