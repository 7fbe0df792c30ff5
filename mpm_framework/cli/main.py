"""``mpm``: the entry point. Heavy imports happen inside the commands."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import click

from ..errors import MPMError


class MPMGroup(click.Group):
    """Turns user mistakes (:class:`MPMError`) into one-line errors, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MPMError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            # A full disk or a read-only folder anywhere (checkpoints, metrics,
            # plots, exports): name the path and the free space, no traceback.
            from ..storage import storage_error

            error = storage_error(exc)
            if error is None:
                raise
            raise click.ClickException(str(error)) from None


@click.group(cls=MPMGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mpm-framework", message="mpm %(version)s")
def cli() -> None:
    """MPM: build a vision-language model in any language by pivoting through a
    multilingual LLM.

    \b
    Quick start:
      mpm plugins list                          what is installed
      mpm demo                                  the whole MPM experiment on the toy world
                                                (the mpm-toyworld plugin)
      mpm compose --llm llama --vision clip --lang de show-config
      mpm compose --llm cpm-bee --vision beit3 --lang zh train --stage align

    Components (LLMs, vision encoders, connectors, image decoders, language
    packs) come from plugins; `mpm lang install de` adds a language.
    """


def _add_commands() -> None:
    from .compose_cmd import compose
    from .export_cmd import export
    from .import_cmd import import_
    from .lang_cmd import lang
    from .plan_cmd import plan
    from .plugins_cmd import plugins
    from .serve_cmd import serve
    from .translate_cmd import translate

    for command in (plugins, lang, compose, plan, translate, import_, export, serve):
        cli.add_command(command)
    from ..plugins import register_commands

    register_commands(cli)


_add_commands()


def is_mpm_warning(category: type[Warning]) -> bool:
    """A warning class of MPM or one of its plugins (``mpm_framework``, ``mpm_interop``, ...)."""
    return category.__module__.partition(".")[0].startswith("mpm_")


@contextlib.contextmanager
def tidy_warnings() -> Iterator[None]:
    """MPM's own warnings (e.g. ``RemoteCodeWarning``) as one ``Warning: ...`` line
    on stderr, without Python's ``file:line: Category:`` prefix: they speak to the
    user, not to a developer. Other libraries' warnings keep Python's format."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if is_mpm_warning(category):
            click.echo(f"Warning: {message}", err=True)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main() -> None:
    # Only the console entry point: library callers and tests keep Python's
    # warning machinery (pytest.warns, catch_warnings(record=True)).
    with tidy_warnings():
        cli(prog_name="mpm")


if __name__ == "__main__":
    main()
