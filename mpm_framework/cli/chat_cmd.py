"""``mpm compose ... chat``."""

from __future__ import annotations

import click

from ..errors import MPMError


@click.command("chat", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def chat(spec, args) -> None:
    """Chat with the composed stack about an image."""
    raise MPMError("'chat' is not available yet (tracked in issue 8)")
