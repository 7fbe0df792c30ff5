"""``mpm translate``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("translate", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def translate(args) -> None:
    """Translate an English instruction file into a target language."""
    raise MPMError("'translate' is not available yet (tracked in issue 7)")
