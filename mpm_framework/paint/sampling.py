"""Painting with a PaintStack: filters, seeds, guidance, batches, reranking.

Every image has its own noise generator, seeded ``seed + k`` for the k-th image
of a prompt, so an image depends on its prompt, its seed and the settings only,
never on which other prompts shared its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from .filters import first_rejection
from .scoring import ImageTextScorer


@dataclass
class PaintResult:
    """The images painted for one prompt, best first when a scorer reranked them."""

    prompt: str
    images: list[Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    scores: list[float] | None = None
    rejected: str | None = None  # why the prompt was refused (prompt filter)
    withheld: list[str] = field(default_factory=list)  # why images were dropped (image filters)

    @property
    def image(self) -> Image.Image | None:
        return self.images[0] if self.images else None


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> RGB images."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(np.ascontiguousarray(a.permute(1, 2, 0).numpy())) for a in array]


def generators(seeds: Sequence[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


@torch.no_grad()
def sample_tensors(
    stack: Any,
    prompts: list[str],
    seeds: list[int],
    *,
    negative_prompt: str = "",
    guidance_scale: float | None = None,
    num_steps: int | None = None,
    sampler: str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1], one per (prompt, seed) row."""
    cond, cond_mask = stack.encode_prompts(prompts)
    uncond, uncond_mask = stack.encode_negative(negative_prompt)
    options: dict[str, Any] = {}
    if sampler is not None:
        options["sampler"] = sampler
    return stack.decoder.sample(
        cond, cond_mask, uncond, uncond_mask,
        guidance_scale=guidance_scale, num_steps=num_steps,
        generator=generators(seeds), progress=progress, **options,
    )


def paint(
    stack: Any,
    prompts: str | list[str],
    *,
    negative_prompt: str = "",
    guidance_scale: float | None = None,
    num_steps: int | None = None,
    seed: int = 0,
    images_per_prompt: int = 1,
    keep: int | None = None,
    scorer: ImageTextScorer | None = None,
    prompt_filters: Iterable[Callable[[str], str | None]] = (),
    image_filters: Iterable[Callable[[Image.Image], str | None]] = (),
    sampler: str | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> list[PaintResult]:
    """Paint ``images_per_prompt`` candidates per prompt and return the best ``keep``.

    Guidance defaults to the decoder's configured scale (7.5 as VisCPM); the
    negative prompt defaults to the empty caption. With a ``scorer`` the
    candidates are reranked by ``scorer.score(images, prompt)``. Prompts a
    filter refuses come back with ``rejected`` set and no images."""
    if isinstance(prompts, str):
        prompts = [prompts]
    keep = _check_counts(images_per_prompt, keep, batch_size)
    results = [PaintResult(p) for p in prompts]
    rows = _rows(results, list(prompt_filters), seed, images_per_prompt)

    def sample(chunk: list[tuple[int, int]], inner_progress: bool) -> torch.Tensor:
        return sample_tensors(
            stack, [results[i].prompt for i, _ in chunk], [s for _, s in chunk],
            negative_prompt=negative_prompt, guidance_scale=guidance_scale,
            num_steps=num_steps, sampler=sampler, progress=inner_progress,
        )

    was_training = stack.training
    stack.eval()
    try:
        _paint_rows(sample, results, rows, list(image_filters), batch_size, progress)
    finally:
        stack.train(was_training)
    for result in results:
        _rerank_and_keep(result, scorer, keep)
    return results


def _check_counts(images_per_prompt: int, keep: int | None, batch_size: int) -> int:
    """Validate the counts; returns ``keep`` (all candidates when None)."""
    if images_per_prompt < 1:
        raise ConfigError(f"images_per_prompt must be at least 1, got {images_per_prompt}")
    keep = images_per_prompt if keep is None else keep
    if not 1 <= keep <= images_per_prompt:
        raise ConfigError(f"keep must be between 1 and images_per_prompt={images_per_prompt}, got {keep}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    return keep


def _rows(results: list[PaintResult], prompt_filters: list[Callable[[str], str | None]], seed: int,
          images_per_prompt: int) -> list[tuple[int, int]]:
    """``(result index, seed)`` of every image to paint; refused prompts get none
    (their ``rejected`` says why)."""
    rows: list[tuple[int, int]] = []
    for i, result in enumerate(results):
        result.rejected = first_rejection(prompt_filters, result.prompt)
        if result.rejected is None:
            rows += [(i, seed + k) for k in range(images_per_prompt)]
    return rows


def _paint_rows(sample: Callable[[list[tuple[int, int]], bool], torch.Tensor], results: list[PaintResult],
                rows: list[tuple[int, int]], image_filters: list[Callable[[Image.Image], str | None]],
                batch_size: int, progress: bool) -> None:
    """Paint the rows ``batch_size`` at a time; each image an image filter passes
    goes to its prompt's result (with its seed), the others are withheld."""
    bar = None
    if progress and len(rows) > batch_size:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), desc="painting", unit="image")
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        images = sample(chunk, progress and bar is None)
        for (i, s), image in zip(chunk, to_pil(images), strict=True):
            reason = first_rejection(image_filters, image)
            if reason:
                results[i].withheld.append(reason)
                continue
            results[i].images.append(image)
            results[i].seeds.append(s)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()


def _rerank_and_keep(result: PaintResult, scorer: ImageTextScorer | None, keep: int) -> None:
    """Best first by ``scorer`` (when given), then the first ``keep``."""
    if scorer is not None and result.images:
        scores = [float(x) for x in scorer.score(result.images, result.prompt)]
        order = sorted(range(len(scores)), key=lambda k: -scores[k])
        result.images = [result.images[k] for k in order]
        result.seeds = [result.seeds[k] for k in order]
        result.scores = [scores[k] for k in order]
    result.images, result.seeds = result.images[:keep], result.seeds[:keep]
    if result.scores is not None:
        result.scores = result.scores[:keep]
