"""``mpm compose ... train``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("train", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def train(spec, args) -> None:
    """Train the composed stack (MPM stages align / instruct / paint)."""
    raise MPMError("'train' is not available yet (tracked in issue 7)")
