"""``mpm compose ... eval``: per-language evaluation to JSON + a markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import MPMError
from ..evaluation.datasets import FORMATS  # torch-free, like the whole command module
from ..evaluation.tasks import TASKS
from ..security import trust_remote_code_option
from .chat_cmd import generation_kwargs, generation_options


def _split(_ctx, _param, values: tuple[str, ...]) -> list[str]:
    return [code.strip() for v in values for code in v.split(",") if code.strip()]


@click.command("eval")
@click.option("--task", type=click.Choice(TASKS), required=True, help="What to measure.")
@click.option("--lang", "langs", multiple=True, callback=_split,
              help="Language(s) to evaluate, repeatable or comma-separated (default: the composed --lang).")
@click.option("--data", type=click.Path(), required=True,
              help="Annotation file or folder: XM3600 captions.jsonl, xGQA, MaXM, jsonl/tsv of your own.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--images", "image_root", type=click.Path(file_okay=False), default=None,
              help="Image folder (default: 'images' next to the annotations).")
@click.option("--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where the report goes (default: RUN_DIR/eval with --checkpoint, else ./eval).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N examples per language.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--prompt", default=None,
              help="Caption prompt, or question template with {question} (default: the pack's caption "
                   "prompt / the question as is).")
@generation_options
@trust_remote_code_option
@click.pass_obj
def evaluate(spec, task: str, langs: list[str], data: str, fmt: str, image_root: str | None,
             out_dir: str | None, limit: int | None, batch_size: int, prompt: str | None, **options: Any) -> None:
    """Evaluate per language (caption, vqa, language-rate, alignment).

    \b
    Examples:
      mpm compose --llm cpm-bee --vision beit3 --lang zh eval --task caption \\
          --data xm3600/captions.jsonl --images xm3600/images --checkpoint runs/instruct
      mpm compose --llm llama eval --task alignment --lang de --data pairs.tsv
    """
    from ..evaluation.runner import evaluate as run
    from ..inference.loading import describe_model, load_chat_stack, load_pivot_llm

    if not Path(data).exists():
        raise MPMError(f"evaluation data not found: {data}")
    if limit is not None and limit < 1:
        raise MPMError(f"--limit must be >= 1, got {limit}")
    generation = generation_kwargs(options) if task != "alignment" else None
    checkpoint, device = options["checkpoint"], options["device"]
    langs = langs or [c for c in (getattr(spec, "lang", None) or []) if c != "en"] or ["en"]
    stack = llm = None
    if task == "alignment":
        llm = load_pivot_llm(spec, checkpoint=checkpoint, device=device)
    else:
        stack = load_chat_stack(spec, checkpoint=checkpoint, device=device)
    out = Path(out_dir) if out_dir else (Path(checkpoint) / "eval" if checkpoint else Path("eval"))
    report = run(task, data, langs, stack=stack, llm=llm, fmt=fmt, image_root=image_root, out_dir=out,
                 generation=generation, batch_size=batch_size, prompt=prompt, limit=limit,
                 model=describe_model(stack, checkpoint, spec))
    click.echo(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
    for kind, path in report["files"].items():
        click.echo(f"{kind}: {path}")
    if report.get("plot"):
        click.echo(f"plot: {report['plot']}")
