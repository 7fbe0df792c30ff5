"""``mpm plan``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("plan", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def plan(args) -> None:
    """Plan a recipe's memory and time before launching it."""
    raise MPMError("'plan' is not available yet (tracked in issue 12)")
