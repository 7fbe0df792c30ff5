"""``mpm compose ... SUBCOMMAND``: choose components, then act on the stack."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import click

_OVERRIDE = re.compile(r"^[A-Za-z_][\w.\[\]-]*=")


@dataclass
class ComposeSpec:
    llm: str | None = None
    vision: str | None = None
    connector: str | None = None
    decoder: str | None = None
    lang: list[str] = field(default_factory=list)
    recipe: str | None = None
    overrides: list[str] = field(default_factory=list)

    def resolve(self, extra_overrides: list[str] | tuple[str, ...] = ()):
        from ..config.loading import resolve_config

        return resolve_config(
            llm=self.llm, vision=self.vision, connector=self.connector, decoder=self.decoder,
            lang=self.lang or None, recipe=self.recipe, overrides=[*self.overrides, *extra_overrides],
        )


class ComposeGroup(click.Group):
    """Accepts ``key=value`` overrides between the options and the subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        kept, overrides = [], []
        seen_command = False
        for arg in args:
            if not seen_command and _OVERRIDE.match(arg):
                overrides.append(arg)
                continue
            if not seen_command and arg in self.commands:
                seen_command = True
            kept.append(arg)
        ctx.meta["mpm.overrides"] = overrides
        return super().parse_args(ctx, kept)


def _split_langs(_ctx, _param, values: tuple[str, ...]) -> list[str]:
    return [code.strip() for v in values for code in v.split(",") if code.strip()]


@click.group(cls=ComposeGroup)
@click.option("--llm", help="Pivot LLM (e.g. llama, hf-causal-lm, cpm-bee).")
@click.option("--vision", help="Vision encoder (e.g. clip, siglip, beit3).")
@click.option("--connector", help="Connector: linear, mlp2x_gelu, resampler, identity.")
@click.option("--decoder", help="Image decoder for paint stacks (e.g. unet).")
@click.option("--lang", multiple=True, callback=_split_langs,
              help="Target language(s), repeatable or comma-separated (English is always in).")
@click.option("--config", "recipe", type=click.Path(dir_okay=False), help="Recipe YAML (model/data/run).")
@click.pass_context
def compose(ctx: click.Context, llm, vision, connector, decoder, lang, recipe) -> None:
    """Compose a stack from plugins and act on it.

    \b
    Config layers: component defaults < --config recipe.yaml < key=value overrides
    (e.g. run.lr=1e-5 model.llm.dtype=bf16), given before the subcommand.

    \b
    Presets: components with size presets (cpm-bee model.llm.size, beit3
    model.vision.preset) default to the real published size; ask for a small
    random model explicitly (model.llm.size=tiny model.vision.preset=tiny).
    show-config and train print the presets in use.

    \b
    Examples:
      mpm compose --llm llama --vision clip --lang de show-config
      mpm compose --config examples/recipes/toy.yaml run.max_steps=10 train
    """
    ctx.obj = ComposeSpec(llm, vision, connector, decoder, list(lang), recipe, ctx.meta.get("mpm.overrides", []))


@compose.command("show-config")
@click.argument("overrides", nargs=-1)
@click.pass_obj
def show_config(spec: ComposeSpec, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved, validated config as YAML."""
    from ..config.loading import to_yaml
    from ..training.preflight import preset_summary

    cfg = spec.resolve(overrides)
    presets = preset_summary(cfg)
    if presets:
        click.echo(f"# presets: {presets}")
    click.echo(to_yaml(cfg), nl=False)


def _register_subcommands() -> None:
    from .chat_cmd import chat
    from .eval_cmd import evaluate
    from .paint_cmd import paint
    from .serve_cmd import serve
    from .train_cmd import train

    for command in (train, chat, evaluate, paint, serve):
        compose.add_command(command)


_register_subcommands()
