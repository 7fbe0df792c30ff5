"""``mpm compose ... paint``: text to image through the pivot LLM."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError, MPMError
from ..security import trust_remote_code_option

SAMPLERS = ("ddpm", "ddim", "euler", "euler_ancestral", "dpmsolver")


def _outputs(out: Path, num_prompts: int, num_images: int) -> list[list[Path]]:
    """``out.png`` for one image; ``out-<prompt>-<image>.png`` for several."""
    if num_prompts == 1 and num_images == 1:
        return [[out]]
    return [[out.with_name(f"{out.stem}-{p}-{k}{out.suffix}") for k in range(num_images)]
            for p in range(num_prompts)]


def _save(image, path: Path, meta: dict[str, str]) -> None:
    from PIL.PngImagePlugin import PngInfo

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        info = PngInfo()
        for key, value in meta.items():
            info.add_itxt(key, value)  # iTXt: UTF-8, so Chinese prompts survive
        image.save(path, pnginfo=info)
    else:
        image.save(path)


@click.command("paint")
@click.argument("prompts", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default="paint.png", show_default=True,
              help="Output image; several images become OUT-<prompt>-<image>.png.")
@click.option("--negative", default="", help="Negative prompt (default: the empty caption, as VisCPM-Paint).")
@click.option("--guidance", type=float, default=None,
              help="Classifier-free guidance scale (default: model.decoder.guidance_scale, 7.5).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Denoising steps (default: the decoder's).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="Sampler (default: model.decoder.scheduler).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the first image (k-th: seed+k).")
@click.option("--images", "images_per_prompt", type=click.IntRange(1), default=1, show_default=True,
              help="Candidates painted per prompt.")
@click.option("--keep", type=click.IntRange(1), default=None,
              help="Images kept per prompt (the best ones with --rerank; default: all).")
@click.option("--rerank", type=click.Path(file_okay=False), default=None,
              help="A local CLIP-style checkpoint (CLIP, Chinese-CLIP, SigLIP) that reranks the candidates.")
@click.option("--blocklist", type=click.Path(dir_okay=False), default=None,
              help="Refuse prompts containing any term of this file (one per line).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--checkpoint", type=click.Path(file_okay=False), default=None,
              help="A training run directory: its saved config and weights replace the composed stack.")
@click.option("--device", default=None, help="Run on this torch device (e.g. cuda).")
@trust_remote_code_option
@click.pass_obj
def paint(spec, prompts, out, negative, guidance, steps, sampler, seed, images_per_prompt, keep, rerank,
          blocklist, batch_size, checkpoint, device) -> None:
    """Paint images from prompts in any language the pivot LLM knows.

    \b
    Examples:
      mpm compose --llm llama --decoder unet --lang zh paint "一个红色的圆形在左边" --out out.png
      mpm compose --decoder unet paint --checkpoint runs/paint "ein blaues Quadrat" --images 4 --keep 1 \\
          --rerank /models/chinese-clip
    """
    keep = keep if keep is not None else images_per_prompt
    if keep > images_per_prompt:
        raise ConfigError(f"--keep {keep} is more than --images {images_per_prompt}")
    filters = []
    if blocklist is not None:
        from ..paint.filters import BlocklistFilter

        filters.append(BlocklistFilter.from_file(blocklist))
    scorer = None
    if rerank is not None:
        from ..paint.scoring import CLIPScorer

        scorer = CLIPScorer(rerank)
    from ..inference.loading import load_paint_stack

    stack = load_paint_stack(spec, checkpoint, device)
    if checkpoint is None and not _has_weights(stack):
        click.echo("note: the decoder has random weights (no --checkpoint, no model.decoder.path): "
                   "expect noise.", err=True)
    results = stack.paint(
        list(prompts), negative_prompt=negative, guidance_scale=guidance, num_steps=steps, sampler=sampler,
        seed=seed, images_per_prompt=images_per_prompt, keep=keep, scorer=scorer, prompt_filters=filters,
        batch_size=batch_size, progress=True,
    )
    langs = [c for c in (spec.lang or []) if c != "en"] if spec is not None else []
    written = 0
    paths = _outputs(Path(out), len(results), keep)
    for result, targets in zip(results, paths, strict=True):
        if result.rejected:
            click.echo(f"refused: {result.prompt!r} ({result.rejected})", err=True)
            continue
        for k, image in enumerate(result.images):
            meta = {"prompt": result.prompt, "negative_prompt": negative, "seed": str(result.seeds[k]),
                    "guidance_scale": str(stack.decoder.guidance_scale if guidance is None else guidance),
                    "lang": ",".join(langs) or "en", "software": "mpm paint"}
            if result.scores is not None:
                meta["score"] = f"{result.scores[k]:.4f}"
            _save(image, targets[k], meta)
            click.echo(str(targets[k]))
            written += 1
    if written == 0:
        raise MPMError("no image was painted (every prompt was refused)")


def _has_weights(stack) -> bool:
    config = getattr(stack, "config", None)
    try:
        return bool(config.model.decoder.path)
    except AttributeError:
        return False
