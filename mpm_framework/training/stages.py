"""MPM stages: data kinds + default trainable set + how samples become batches +
the objective. ``align``, ``instruct`` and ``pretrain`` are built in; other
modules add stages with :func:`register_stage` (the paint stage lives with the
paint code, ``mpm_framework.paint.stage:PaintStage``, and is imported on first
use), and a recipe may name any ``"package.module:StageClass"``.

A stage turns one checked :class:`~.samples.Sample` into an item (``prepare``,
run in the data pipeline; raise :class:`~.samples.BadSample` to skip it), a list
of items into a batch (``collate``), and a batch into a loss (``compute_loss``)
that is a *mean* over ``loss_units(batch)`` units (label tokens for language
modelling, images for paint); the trainer weights micro-batches by their units
so the step loss is the mean over the whole global batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..contracts.prompt import IGNORE_INDEX, IMAGE_MARKER, PromptEncoding, Turn, next_token_targets
from ..contracts.vision import PATCH_EMBED_GROUP
from ..errors import ConfigError, did_you_mean
from ..registry import import_string
from ..stacks.base import Stack
from ..stacks.text import TextStack  # noqa: F401  (re-exported: mpm_framework.training.TextStack)
from .lora import lora_enabled
from .samples import BadSample, Sample, open_image
from .sources import ListSource, RecordSource


@dataclass
class PrepareContext:
    """What ``prepare``/``collate`` may use; built once per run (and copied into
    data-loader workers)."""

    stack: Any
    cfg: Any
    max_length: int
    packing: bool = False
    transform: Callable[[Any], torch.Tensor] | None = None

    def image_tensor(self, sample: Sample, rng: random.Random) -> torch.Tensor:
        image = open_image(sample)
        transform = self.transform
        if transform is None:
            raise ConfigError("this stack has no image transform")
        if isinstance(getattr(transform, "rng", None), random.Random):
            transform.rng = random.Random(rng.random())  # per-sample crops/flips: exact on resume
        return transform(image)


class Stage:
    """Base class of training stages (see the module docstring)."""

    name: str = ""
    sample_kinds: tuple[str, ...] = ("pairs", "instruct")
    description: str = ""

    # -- model side ------------------------------------------------------------
    def check_stack(self, stack: Stack) -> None:
        """Raise :class:`ConfigError` when this stage cannot train ``stack``."""

    def default_trainable(self, stack: Stack, cfg: Any = None) -> list[str]:
        raise NotImplementedError

    def default_frozen(self, stack: Stack, cfg: Any = None) -> list[str]:
        return []

    # -- data side -------------------------------------------------------------
    def extra_sources(self, stack: Stack, cfg: Any) -> list[tuple[RecordSource, float]]:
        """Sources the stage mixes in, each with its share of all records."""
        return []

    def make_context(self, stack: Stack, cfg: Any) -> PrepareContext:
        transform = stack.image_transform(train=True)
        return PrepareContext(stack, cfg, int(cfg.data.max_length), bool(cfg.data.packing), transform)

    def prepare(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> Any:
        raise NotImplementedError

    def collate(self, items: list[Any], ctx: PrepareContext) -> dict[str, Any]:
        raise NotImplementedError

    def loss_units(self, batch: dict[str, Any]) -> int:
        raise NotImplementedError

    def compute_loss(self, model: Callable[[dict[str, Any]], Any], batch: dict[str, Any]) -> torch.Tensor:
        out = model(batch)
        return out if isinstance(out, torch.Tensor) else out.loss

    def tokens(self, batch: dict[str, Any]) -> int:
        """Input tokens of a batch (throughput)."""
        mask = batch.get("attention_mask")
        return int(mask.sum()) if isinstance(mask, torch.Tensor) else 0


# -- language-model stages ----------------------------------------------------------


@dataclass
class LMItem:
    encoding: PromptEncoding
    pixel_values: torch.Tensor | None
    lang: str


def bridge_groups(stack: Stack) -> list[str]:
    """``vision.<group>`` names of an encoder's own bridge (VisCPM's queries + mapping)."""
    if stack.kind != "chat" or not stack.vision.owns_bridge:
        return []
    return [f"vision.{g}" for g in stack.vision.bridge_groups()]


def _truncate(enc: PromptEncoding, max_length: int, where: str) -> PromptEncoding:
    if len(enc) <= max_length:
        return enc
    cut_slots = any(enc.image_mask[max_length:])
    no_answer = all(label == IGNORE_INDEX for label in next_token_targets(enc.labels[:max_length]))
    if enc.extra or cut_slots or no_answer:
        why = ("image slots would be cut" if cut_slots else "nothing of the answer would remain" if no_answer
               else "the LLM's encoding cannot be cut")
        raise BadSample("too_long", f"{where}: {len(enc)} tokens > data.max_length={max_length} ({why})")
    return PromptEncoding(enc.input_ids[:max_length], enc.labels[:max_length], enc.image_mask[:max_length])


def _check_labels(enc: PromptEncoding, where: str) -> None:
    if all(label == IGNORE_INDEX for label in next_token_targets(enc.labels)):
        raise BadSample("no_labels", f"{where}: no answer tokens left to learn from")


class LMStage(Stage):
    """Shared by align / instruct / pretrain: prompt encodings with labels on the
    answer tokens only, images stacked in sample order, optional packing."""

    def check_stack(self, stack: Stack) -> None:
        if not isinstance(stack, Stack) or stack.kind not in ("chat", "text"):
            raise ConfigError(f"stage '{self.name}' trains a chat stack (vision -> connector -> LLM); "
                              f"got {type(stack).__name__}")

    def make_context(self, stack: Stack, cfg: Any) -> PrepareContext:
        ctx = super().make_context(stack, cfg)
        if ctx.packing and not stack.llm.supports_packing:
            raise ConfigError(
                f"data.packing=true needs an LLM that can keep packed samples apart; "
                f"{type(stack.llm).__name__} does not (supports_packing is False). Set data.packing=false."
            )
        return ctx

    def turns_for(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> list[Turn]:
        if sample.kind == "instruct":
            assert sample.turns is not None
            return sample.turns
        pack = ctx.stack.languages.get(sample.lang)
        prompts = (pack.caption_prompts if pack is not None else ()) or ("Describe the image.",)
        return [Turn("user", f"{IMAGE_MARKER}\n{rng.choice(prompts)}"), Turn("assistant", sample.text or "")]

    def encode(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> PromptEncoding:
        return ctx.stack.encode_conversation(self.turns_for(sample, rng, ctx))

    def prepare(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> LMItem:
        # A pair is asked for in its own language (the pack's caption prompts), so
        # that pack must be loaded; a conversation carries its own wording.
        languages = ctx.stack.languages
        if sample.kind == "pairs" and sample.lang not in languages:
            raise BadSample("unknown_language", f"{sample.where}: language '{sample.lang}' has no language "
                                                f"pack in this stack (loaded: {', '.join(languages)})")
        enc = _truncate(self.encode(sample, rng, ctx), ctx.max_length, sample.where)
        _check_labels(enc, sample.where)
        pixels = ctx.image_tensor(sample, rng) if sample.has_image else None
        return LMItem(enc, pixels, sample.lang)

    def collate(self, items: list[LMItem], ctx: PrepareContext) -> dict[str, Any]:
        llm = ctx.stack.llm
        encodings = [item.encoding for item in items]
        if ctx.packing:
            encodings = llm.pack_sequences(encodings, ctx.max_length)
        batch = llm.collate(encodings)
        pixels = [item.pixel_values for item in items if item.pixel_values is not None]
        if pixels:
            batch["pixel_values"] = torch.stack(pixels).to(_vision_dtype(ctx.stack))
        return batch

    def loss_units(self, batch: dict[str, Any]) -> int:
        return int((next_token_targets(batch["labels"]) != IGNORE_INDEX).sum())


class AlignStage(LMStage):
    name = "align"
    description = "English image-text pairs; LLM frozen, connector (+ encoder bridge) trains"

    def default_trainable(self, stack: Any, cfg: Any = None) -> list[str]:
        return ["connector", *bridge_groups(stack)]


class InstructStage(LMStage):
    name = "instruct"
    description = ("instructions (LLaVA conversations) + a share of target-language calibration pairs; "
                   "connector and LLM train")

    def default_trainable(self, stack: Any, cfg: Any = None) -> list[str]:
        lora = _lora_components(cfg)
        base = ["connector"] if "llm" in lora else ["connector", "llm"]
        return [*base, *bridge_groups(stack)]

    def default_frozen(self, stack: Stack, cfg: Any = None) -> list[str]:
        if stack.kind == "chat" and PATCH_EMBED_GROUP in stack.vision.trainable_groups():
            return [f"vision.{PATCH_EMBED_GROUP}"]
        return []

    def extra_sources(self, stack: Any, cfg: Any) -> list[tuple[RecordSource, float]]:
        share = float(cfg.data.calibration_share)
        if share <= 0:
            return []
        if share >= 1:
            raise ConfigError(f"data.calibration_share must be below 1, got {share}")
        languages = stack.languages
        codes = list(cfg.data.calibration_langs) or [c for c in languages if c != "en"]
        if not codes:
            raise ConfigError("data.calibration_share > 0 but there is no target language: compose with "
                              "--lang (e.g. --lang zh) or set data.calibration_langs")
        records = []
        for code in codes:
            if code not in languages:
                raise ConfigError(f"data.calibration_langs names '{code}', which is not loaded."
                                  f"{did_you_mean(code, languages)} Loaded: {', '.join(languages)}")
            for pair in languages[code].calibration():
                records.append({"conversations": [{"from": "human", "value": pair.instruction},
                                                  {"from": "gpt", "value": pair.response}],
                                "lang": code})
        return [(ListSource(records, name=f"calibration[{','.join(codes)}]", kind="instruct"), share)]


class PretrainStage(LMStage):
    name = "pretrain"
    sample_kinds = ("text", "instruct")
    description = "plain text (and text-only conversations) for the pivot LLM alone"

    def default_trainable(self, stack: Any, cfg: Any = None) -> list[str]:
        return ["llm"]

    def make_context(self, stack: Any, cfg: Any) -> PrepareContext:
        ctx = super().make_context(stack, cfg)
        ctx.transform = None
        return ctx

    def encode(self, sample: Sample, rng: random.Random, ctx: PrepareContext) -> PromptEncoding:
        if sample.kind == "text":
            return ctx.stack.llm.encode_text(sample.text or "")
        if sample.has_image:
            raise BadSample("bad_conversation", f"{sample.where}: the pretrain stage is text-only")
        return ctx.stack.llm.format_prompt(sample.turns or [])


def _vision_dtype(stack: Stack) -> torch.dtype:
    """Pixels in the encoder's dtype (a bf16 encoder trained without autocast)."""
    param = next(stack.vision.parameters(), None) if stack.kind == "chat" else None
    return param.dtype if param is not None and param.dtype.is_floating_point else torch.float32


def _lora_components(cfg: Any) -> list[str]:
    try:
        lora = cfg.run.lora
        return list(lora.components) if lora_enabled(lora) else []
    except (AttributeError, KeyError, TypeError):
        return []


# -- registry -----------------------------------------------------------------------

_STAGES: dict[str, Stage | str] = {
    "pretrain": PretrainStage(),
    "align": AlignStage(),
    "instruct": InstructStage(),
    "paint": "mpm_framework.paint.stage:PaintStage",
}
CHAIN_ORDER = ("pretrain", "align", "instruct")  # the order recipes chain the built-in stages in


def register_stage(stage: Stage | type[Stage], *, replace: bool = False) -> Stage:
    """Add a stage (an instance or a class with a ``name``)."""
    instance = stage() if isinstance(stage, type) else stage
    if not instance.name:
        raise ConfigError(f"stage {type(instance).__name__} needs a name: set its class attribute name = '...'")
    current = _STAGES.get(instance.name)
    if current is not None and not replace and not isinstance(current, str):
        raise ConfigError(f"stage '{instance.name}' is already registered ({type(current).__name__}); "
                          "pass replace=True to override it")
    _STAGES[instance.name] = instance
    return instance


def stage_names() -> list[str]:
    return list(_STAGES)


def get_stage(name: str) -> Stage:
    """A registered stage by name, or ``"package.module:StageClass"``.

    An import string must name a :class:`Stage` subclass or instance; anything
    else (``os:system``) is a :class:`ConfigError`, and is never called."""
    if ":" in name:
        return _stage_object(name, import_string(name))
    entry = _STAGES.get(name)
    if entry is None:
        raise ConfigError(f"unknown stage '{name}'.{did_you_mean(name, _STAGES)} Stages: {', '.join(_STAGES)} "
                          "(or 'package.module:StageClass')")
    if isinstance(entry, str):
        try:
            obj = import_string(entry)
        except ImportError as exc:
            raise ConfigError(f"stage '{name}' is provided by {entry}, which cannot be imported: {exc}") from None
        entry = _stage_object(entry, obj)
        _STAGES[name] = entry
    return entry


def _stage_object(source: str, obj: Any) -> Stage:
    """``obj`` as a Stage instance; a class is instantiated only when it is a Stage."""
    if isinstance(obj, type) and issubclass(obj, Stage):
        return obj()
    if isinstance(obj, Stage):
        return obj
    raise ConfigError(f"run.stage '{source}' names a {type(obj).__name__}, "
                      "not a Stage: name a subclass of mpm_framework.training.stages.Stage (or an instance), "
                      f"or a registered stage: {', '.join(_STAGES)}")


def check_saved_stages(cfg: Any, source: str) -> None:
    """Refuse stage import strings in a config read from a run folder: the folder
    is data, and ``pkg.module:Stage`` would import (run) code it names. Registered
    stage names pass; import strings pass only when the running command granted
    code (``--trust-remote-code``, see :mod:`mpm_framework.security`)."""
    from omegaconf import DictConfig

    from ..security import remote_code_trusted

    if remote_code_trusted():
        return
    named = [("run.stage", cfg.run.get("stage"))]
    for key, stage in (cfg.get("stages") or {}).items():
        named.append((f"the stage name stages.{key}", str(key)))  # a stage's key is run.stage when it runs
        run = stage.get("run") if isinstance(stage, DictConfig | dict) else None
        if run is not None and run.get("stage") is not None:
            named.append((f"stages.{key}.run.stage", run.get("stage")))
    for key, value in named:
        if isinstance(value, str) and ":" in value:
            raise ConfigError(f"{source}: {key} is '{value}', code to import; a run folder may only name "
                              f"registered stages ({', '.join(_STAGES)}). If you trust whoever wrote this "
                              "folder, pass --trust-remote-code")


def default_freeze_sets(stage: str, stack: Any, cfg: Any = None) -> tuple[list[str], list[str]]:
    """(trainable, frozen) a stage uses when the recipe does not set them."""
    s = get_stage(stage)
    return s.default_trainable(stack, cfg), s.default_frozen(stack, cfg)


def resolve_freeze_sets(stage: Stage, stack: Any, cfg: Any) -> tuple[list[str], list[str]]:
    """The stage defaults, overridden by ``run.trainable`` / ``run.frozen``."""
    trainable = stage.default_trainable(stack, cfg)
    frozen = stage.default_frozen(stack, cfg)
    if cfg.run.trainable is not None:
        trainable = list(cfg.run.trainable)
    if cfg.run.frozen is not None:
        frozen = list(cfg.run.frozen)
    return trainable, frozen
