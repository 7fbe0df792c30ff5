"""``mpm demo``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("demo", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def demo(args) -> None:
    """Run the whole MPM experiment on the built-in toy world."""
    raise MPMError("'demo' is not available yet (tracked in issue 9)")
