"""``mpm compose ... paint``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("paint", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def paint(spec, args) -> None:
    """Paint an image from a prompt in any installed language."""
    raise MPMError("'paint' is not available yet (tracked in issue 10)")
