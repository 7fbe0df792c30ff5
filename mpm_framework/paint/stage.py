"""The ``paint`` training stage: image-text pairs -> the denoising objective.

Samples are the trainer's ``pairs`` records (``{"image": path | PIL, "text":
caption, "lang": "en"}``); a batch is ``{"images": (B, 3, H, W) in [-1, 1],
"prompts": [...]}`` and the loss is :meth:`PaintStack.forward`, a mean over the
batch's images. The pivot LLM stays frozen: MPM trains paint on English pairs
only and relies on the pivot for every other language.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from ..stacks.base import Stack
from ..training.samples import BadSample, Sample
from ..training.stages import PrepareContext, Stage


@dataclass
class PaintItem:
    image: torch.Tensor
    prompt: str
    lang: str


class PaintStage(Stage):
    name = "paint"
    sample_kinds = ("pairs",)
    description = "image-text pairs (English); pivot LLM frozen, decoder adapter (+ cross-attention / UNet) trains"

    def check_stack(self, stack: Stack) -> None:
        if not isinstance(stack, Stack) or stack.kind != "paint":
            raise ConfigError(
                f"stage 'paint' trains a paint stack (pivot LLM -> adapter -> image decoder); got "
                f"{type(stack).__name__}. Compose it with --decoder (e.g. --decoder unet) and no --vision."
            )

    def default_trainable(self, stack: Stack, cfg: Any = None) -> list[str]:
        return list(stack.default_trainable())

    def make_context(self, stack: Stack, cfg: Any) -> PrepareContext:
        return PrepareContext(stack, cfg, int(cfg.data.max_length), False, stack.image_transform(train=True))

    def prepare(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> PaintItem:
        languages = ctx.stack.languages
        if languages and sample.lang not in languages:
            raise BadSample("unknown_language", f"{sample.where}: language '{sample.lang}' has no language "
                                                f"pack in this stack (loaded: {', '.join(languages)})")
        caption = (sample.text or "").strip()
        if not caption:
            raise BadSample("empty_text", f"{sample.where}: empty caption")
        if not sample.has_image:
            raise BadSample("missing_image", f"{sample.where}: a paint sample needs an image")
        return PaintItem(ctx.image_tensor(sample, rng), caption, sample.lang)

    def collate(self, items: list[PaintItem], ctx: PrepareContext) -> dict[str, Any]:
        return {
            "images": torch.stack([item.image for item in items]),
            "prompts": [item.prompt for item in items],
            "langs": [item.lang for item in items],
        }

    def loss_units(self, batch: dict[str, Any]) -> int:
        return len(batch["prompts"])
