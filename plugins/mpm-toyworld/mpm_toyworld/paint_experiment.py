"""The toy-world paint experiment: VisCPM-Paint's claim on the shapes world.

A decoder is trained to paint one-object scenes from their **English** captions
through a frozen pivot LLM, then asked to paint from captions in other
languages (zero-shot). A second decoder, trained the same way on captions in
every language (the *native* condition, as VisCPM-Paint-zhplus adds native
Chinese pairs), shows what native data would buy. An attribute classifier,
trained on renders only, reads colour, shape and position off every painted
image; the table reports how often they match the prompt.

    python -m mpm_toyworld.paint_experiment --llm tiny-llm --lang zh,de,fr --profile quick

The lead's ``mpm demo`` calls :func:`run_paint_experiment` with the toy pivot it
pretrained.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.contracts.llm import PivotLLM
from mpm_framework.contracts.toy_grammar import Scene
from mpm_framework.errors import ConfigError, MPMError

from .paint_classifier import (
    AttributeClassifier,
    ClassifierReport,
    accuracy,
    labels_of,
    single_object_scenes,
    train_classifier,
)
from .render import render
from .split import scene_split


@dataclass(frozen=True)
class PaintProfile:
    name: str
    image_size: int = 24
    sizes: tuple[str, ...] = ("large",)
    # decoder (a random UNet in pixel space; the toy world has no pretrained one)
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    block_kinds: tuple[str, ...] = ("plain", "plain", "cross")
    cross_attention_dim: int = 64
    attention_head_dim: int = 8
    prediction_type: str = "v_prediction"  # cleaner few-step samples than epsilon at this budget
    beta_schedule: str = "squaredcos_cap_v2"  # the cosine schedule of improved DDPM (small images)
    pooled_conditioning: bool = True  # a from-scratch UNet follows prompts sooner (see the decoder config)
    adapter_standardize: bool = True  # tiny pivots share one dominant direction across tokens
    train_renders: int = 2048
    steps: int = 1200
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 30
    # sampling
    scheduler: str = "ddim"
    sample_steps: int = 20
    guidance_scale: float = 2.0  # higher scales oversaturate what a briefly trained decoder paints
    eval_repeats: int = 2  # prompts per scene and language
    # judge
    classifier_train: int = 1500
    classifier_test: int = 500
    classifier_epochs: int = 5


PROFILES: dict[str, PaintProfile] = {
    "quick": PaintProfile("quick"),
    "full": PaintProfile(
        "full", image_size=32, block_out_channels=(32, 64, 96), train_renders=8192, steps=8000,
        batch_size=32, lr=1e-3, warmup_steps=300, sample_steps=40, eval_repeats=3,
        classifier_train=4000, classifier_test=1000, classifier_epochs=8,
    ),
}


def apply_settings(profile: PaintProfile, settings: Sequence[str]) -> PaintProfile:
    """``["steps=3000", "block_out_channels=32,64,96"]`` -> a changed profile."""
    import dataclasses

    from mpm_framework.errors import did_you_mean

    fields = {f.name: f for f in dataclasses.fields(PaintProfile) if f.name != "name"}
    changes: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"bad profile setting {item!r}.{did_you_mean(key, fields)} "
                              f"Settings: {', '.join(fields)}")
        current = getattr(profile, key)
        try:
            if isinstance(current, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1")
            elif isinstance(current, tuple):
                kind = type(current[0]) if current else str
                value = tuple(kind(v.strip()) for v in raw.split(",") if v.strip())
            else:
                value = type(current)(raw)
        except ValueError:
            raise ConfigError(f"profile setting {key} takes a {type(current).__name__}, got {raw!r}") from None
        changes[key] = value
    return dataclasses.replace(profile, **changes)


def get_profile(profile: str | PaintProfile) -> PaintProfile:
    if isinstance(profile, PaintProfile):
        return profile
    if profile not in PROFILES:
        from mpm_framework.errors import did_you_mean

        raise ConfigError(f"unknown paint profile '{profile}'.{did_you_mean(profile, PROFILES)} "
                          f"Profiles: {', '.join(PROFILES)}")
    return PROFILES[profile]


# -- results ---------------------------------------------------------------------


@dataclass
class ConditionScores:
    """Classifier accuracy on the images painted from one language's prompts."""

    color: float
    shape: float
    position: float
    all: float  # colour, shape and position all right
    heldout_all: float  # ``all`` on scenes never seen in training


@dataclass
class PaintExperimentResult:
    profile: str
    languages: list[str]
    classifier: ClassifierReport
    zero_shot: dict[str, ConditionScores]  # decoder trained on English captions only
    native: dict[str, ConditionScores] = field(default_factory=dict)  # trained on every language
    train_loss: dict[str, float] = field(default_factory=dict)  # mean loss of the last tenth of the steps
    start_loss: dict[str, float] = field(default_factory=dict)  # mean loss of the first tenth
    num_train_scenes: int = 0
    num_heldout_scenes: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        """The paint table: zero-shot vs native per language (accuracy, 0-1)."""
        chance = {"color": 1 / 4, "shape": 1 / 3, "position": 1 / 4}
        chance_all = chance["color"] * chance["shape"] * chance["position"]
        acc = self.classifier.accuracy
        head = (
            f"Toy-world paint ({self.profile}): decoders paint one-object scenes from captions through "
            f"the frozen pivot;\nan attribute classifier (held-out renders: colour {acc['color']:.2f}, "
            f"shape {acc['shape']:.2f}, position {acc['position']:.2f}) scores each image.\n"
            f"zero-shot = decoder trained on English captions only; native = trained on captions in "
            f"every language.\n{self.num_train_scenes} training scenes, {self.num_heldout_scenes} held out "
            f"(new attribute combinations); 'held' = all-correct on those.\n"
        )
        cols = ("color", "shape", "position", "all", "heldout_all")
        names = ("colour", "shape", "pos", "all", "held")
        group = " ".join(f"{n:>6}" for n in names)
        lines = [head, f"{'lang':<6}| {'zero-shot':^{len(group)}} | {'native':^{len(group)}}",
                 f"{'':<6}| {group} | {group}"]
        for lang in self.languages:
            zs = self.zero_shot[lang]
            row = " ".join(f"{getattr(zs, c):>6.2f}" for c in cols)
            if lang in self.native:
                nat = " ".join(f"{getattr(self.native[lang], c):>6.2f}" for c in cols)
            else:
                nat = " ".join(f"{'-':>6}" for _ in cols)
            lines.append(f"{lang:<6}| {row} | {nat}")
        chance_row = " ".join(f"{v:>6.2f}" for v in (*chance.values(), chance_all, chance_all))
        lines.append(f"{'chance':<6}| {chance_row} | {chance_row}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- building blocks -------------------------------------------------------------


def build_paint_stack(
    llm: PivotLLM, profile: PaintProfile, packs: dict[str, LanguagePack], seed: int = 0,
    llm_config: Any = None,
):
    """A PaintStack around ``llm`` with a fresh random pixel-space UNet.

    ``llm_config`` (the pivot's ``model.llm`` section) goes into the stack's
    config so that a trained run is a complete recipe: ``mpm compose paint
    --checkpoint RUN`` rebuilds the pivot from it. Without it the run holds the
    decoder only."""
    from omegaconf import OmegaConf

    from mpm_framework.composition import build_component, component_config
    from mpm_framework.contracts.base import BuildContext
    from mpm_framework.errors import UnknownComponentError
    from mpm_framework.stacks.paint import PaintStack

    settings = {
        "space": "pixel", "image_size": profile.image_size,
        "block_out_channels": list(profile.block_out_channels), "block_kinds": list(profile.block_kinds),
        "cross_attention_dim": profile.cross_attention_dim, "attention_head_dim": profile.attention_head_dim,
        "scheduler": profile.scheduler, "trainable": "all", "seed": seed,
        "prediction_type": profile.prediction_type, "beta_schedule": profile.beta_schedule,
        "pooled_conditioning": profile.pooled_conditioning, "adapter_standardize": profile.adapter_standardize,
        "guidance_scale": profile.guidance_scale, "num_inference_steps": profile.sample_steps,
    }
    try:
        cfg = component_config("decoder", "unet", settings)
    except UnknownComponentError:
        raise MPMError(
            "the paint experiment needs the 'unet' image decoder: pip install ./plugins/mpm-paint-unet"
        ) from None
    device = next(llm.parameters()).device
    decoder = build_component("decoder", "unet", settings, seed=seed,
                              context=BuildContext(llm_hidden_size=llm.hidden_size))
    model: dict[str, Any] = {"decoder": cfg}
    if llm_config is not None:
        model.update(llm=llm_config, vision=None, connector=None, languages=list(packs))
    stack = PaintStack(llm, decoder.to(device), packs, OmegaConf.create({"model": model}))
    stack.set_trainable(stack.default_trainable())
    return stack


def caption_records(
    scenes: Sequence[Scene], images: Sequence[Any], packs: dict[str, LanguagePack], langs: Sequence[str],
    seed: int,
) -> list[dict[str, Any]]:
    """Image-text pairs in the trainer's ``pairs`` format: each render gets a
    caption realised in a language drawn from ``langs`` (templates vary)."""
    rng = random.Random(f"paint-captions/{seed}/{','.join(langs)}")
    records = []
    for scene, image in zip(scenes, images, strict=True):
        code = rng.choice(list(langs))
        records.append({"image": image, "text": packs[code].realise_caption(scene, rng), "lang": code})
    return records


def train_decoder(
    stack, records: list[dict[str, Any]], profile: PaintProfile, output_dir: Path, seed: int, progress: bool
):
    """The ``paint`` stage in the trainer (warmup + cosine, AdamW, caption
    dropout from the decoder config); returns its TrainResult."""
    from omegaconf import OmegaConf

    from mpm_framework.training import train_stage

    cfg = OmegaConf.create({
        "run": {
            "stage": "paint", "output_dir": str(output_dir), "max_steps": profile.steps,
            "batch_size": profile.batch_size, "lr": profile.lr, "seed": seed,
            "warmup_steps": profile.warmup_steps, "schedule": "cosine", "min_lr_ratio": 0.1,
            "weight_decay": 0.0, "save_every": 0, "overwrite": True, "progress": progress,
            "log_every": max(1, profile.steps // 5),
        },
        "data": {"max_bad_fraction": 0.0},
    })
    if "llm" in stack.config.model:  # a reloadable run (see build_paint_stack)
        cfg.model = stack.config.model
    result = train_stage(stack, cfg, train_samples=records, progress=progress)
    stack.eval()
    return result


def score_condition(
    stack,
    classifier: AttributeClassifier,
    scenes: Sequence[Scene],
    pack: LanguagePack,
    profile: PaintProfile,
    heldout: set[Scene],
    seed: int,
    save_grid: Path | None = None,
) -> ConditionScores:
    """Paint each scene from ``pack``'s captions and score the images."""
    from mpm_framework.paint.sampling import sample_tensors

    rng = random.Random(f"paint-eval/{seed}/{pack.code}")
    targets = [s for s in scenes for _ in range(profile.eval_repeats)]
    prompts = [pack.realise_caption(s, rng) for s in targets]
    stack.eval()
    images = []
    for start in range(0, len(targets), 64):
        chunk = prompts[start:start + 64]
        seeds = [seed * 100_003 + start + k for k in range(len(chunk))]
        images.append(sample_tensors(stack, chunk, seeds, guidance_scale=profile.guidance_scale,
                                     num_steps=profile.sample_steps))
    painted = torch.cat(images)
    predicted = classifier.predict(painted)
    labels = labels_of(targets)
    overall = accuracy(predicted, labels)
    held = [i for i, s in enumerate(targets) if s in heldout]
    held_acc = accuracy({k: v[held] for k, v in predicted.items()}, {k: v[held] for k, v in labels.items()})
    if save_grid is not None:
        _save_grid(painted[:48], save_grid)
    return ConditionScores(
        overall["color"], overall["shape"], overall["position"], overall["all"],
        held_acc["all"] if held else float("nan"),
    )


def _save_grid(images: torch.Tensor, path: Path, columns: int = 12) -> None:
    from mpm_framework.paint.sampling import to_pil

    tiles = to_pil(images)
    size = tiles[0].size[0]
    rows = (len(tiles) + columns - 1) // columns
    from PIL import Image

    grid = Image.new("RGB", (columns * size, rows * size), (255, 255, 255))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % columns) * size, (i // columns) * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.resize((grid.width * 2, grid.height * 2)).save(path)


# -- the experiment ----------------------------------------------------------------


def run_paint_experiment(
    llm: PivotLLM,
    languages: Sequence[str],
    profile: str | PaintProfile = "quick",
    *,
    seed: int = 0,
    native: bool = True,
    out_dir: str | Path | None = None,
    packs: dict[str, LanguagePack] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    llm_config: Any = None,
) -> PaintExperimentResult:
    """Train, paint and score; returns the result (``result.table()`` prints it).

    ``llm`` is any PivotLLM (kept frozen); ``languages`` are the target codes
    (English, the training language, is always evaluated too). ``packs`` can
    be passed in, else they are loaded from the registry. With ``llm_config``
    (the pivot's ``model.llm`` section) each run folder under ``out_dir/runs``
    reloads with ``mpm compose paint --checkpoint``."""
    from mpm_framework.composition import load_language

    started = time.time()
    prof = get_profile(profile)
    targets = [code for code in dict.fromkeys(languages) if code != "en"]
    langs = ["en", *targets]
    packs = dict(packs or {})
    for code in langs:
        if code not in packs:
            packs[code] = load_language(code)
    llm.requires_grad_(False)
    llm.eval()

    scenes = single_object_scenes(prof.sizes)
    train_scenes = [s for s in scenes if scene_split(s) == "train"]
    heldout = {s for s in scenes if scene_split(s) == "eval"}
    if not train_scenes:
        raise MPMError("no training scenes in the paint world")

    log(f"[paint] training the attribute classifier on {prof.classifier_train} renders")
    classifier, report = train_classifier(
        scenes, prof.image_size, prof.classifier_train, prof.classifier_test, prof.classifier_epochs,
        seed=seed, progress=progress,
    )
    rng = random.Random(f"paint-renders/{seed}")
    picks = [train_scenes[i % len(train_scenes)] for i in range(prof.train_renders)]
    images = [render(scene, prof.image_size, rng) for scene in picks]

    result = PaintExperimentResult(prof.name, langs, report, {}, num_train_scenes=len(train_scenes),
                                   num_heldout_scenes=len(heldout))
    out = Path(out_dir) if out_dir is not None else None
    conditions = [("zero_shot", ["en"])]
    if native and targets:
        conditions.append(("native", langs))
    with tempfile.TemporaryDirectory(prefix="mpm-paint-") as scratch:
        for name, train_langs in conditions:
            torch.manual_seed(seed)
            stack = build_paint_stack(llm, prof, {c: packs[c] for c in langs}, seed=seed, llm_config=llm_config)
            log(f"[paint] {name}: training a decoder on captions in {', '.join(train_langs)} "
                f"({prof.steps} steps)")
            records = caption_records(picks, images, packs, train_langs, seed)
            run_dir = (out / "runs" / name) if out is not None else Path(scratch) / name
            trained = train_decoder(stack, records, prof, run_dir, seed, progress)
            tenth = max(1, len(trained.losses) // 10)
            result.train_loss[name] = sum(trained.losses[-tenth:]) / tenth
            result.start_loss[name] = sum(trained.losses[:tenth]) / tenth
            scores = {}
            for code in langs:
                grid = out / f"{name}_{code}.png" if out is not None else None
                scores[code] = score_condition(stack, classifier, scenes, packs[code], prof, heldout, seed, grid)
            setattr(result, name, scores)
            if out is not None:  # loadable with model.decoder.path=... next to the same pivot
                stack.decoder.save_pretrained(str(out / "decoders" / name))
            del stack
    result.seconds = time.time() - started
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "paint_results.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
        (out / "paint_table.txt").write_text(result.table() + "\n")
    return result


# -- command line --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m mpm_toyworld.paint_experiment",
        description="Train a paint decoder on English captions through a frozen pivot LLM and paint "
                    "from other languages (toy world).",
    )
    parser.add_argument("--llm", default="tiny-llm", help="registered pivot LLM (default: tiny-llm)")
    parser.add_argument("--lang", default="zh,de,fr", help="target languages, comma-separated")
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-native", action="store_true", help="skip the native-caption decoder")
    parser.add_argument("--out", default=None, help="folder for image grids, run folders and results JSON")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="change a profile setting, e.g. --set steps=3000 (repeatable)")
    parser.add_argument("overrides", nargs="*", help="config overrides for the LLM, e.g. model.llm.path=DIR")
    args = parser.parse_args(argv)
    try:
        llm, llm_config = _load_llm(args.llm, list(args.overrides))
        langs = [c.strip() for c in args.lang.split(",") if c.strip()]
        profile = apply_settings(get_profile(args.profile), args.settings)
        result = run_paint_experiment(llm, langs, profile, seed=args.seed, native=not args.no_native,
                                      out_dir=args.out, llm_config=llm_config)
    except MPMError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(result.table())
    print(f"({result.seconds:.0f} s)")
    return 0


def _load_llm(name: str, overrides: list[str]) -> tuple[PivotLLM, Any]:
    import os

    from omegaconf import OmegaConf

    from mpm_framework.composition import build_component
    from mpm_framework.config.loading import resolve_config

    if name in ("tiny-llm", "tiny") and "mpm_framework.testing_plugin" not in os.environ.get("MPM_PLUGINS", ""):
        from mpm_framework import testing_plugin
        from mpm_framework.plugins import get_plugin_manager, register_plugin

        if not get_plugin_manager().is_registered(testing_plugin):
            register_plugin(testing_plugin, name="mpm-tiny-components")
    cfg = resolve_config(llm=name, overrides=overrides)
    return build_component("llm", name, OmegaConf.to_container(cfg.model.llm)), cfg.model.llm


__all__ = ["PROFILES", "PaintExperimentResult", "PaintProfile", "run_paint_experiment"]

if __name__ == "__main__":
    raise SystemExit(main())
