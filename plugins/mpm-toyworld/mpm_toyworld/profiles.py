"""Sizes and budgets of ``mpm demo`` (torch-free).

``quick`` is sized to finish within about five minutes on two CPU cores for
three target languages; it checks that the whole pipeline runs, its numbers
are indicative only. ``full`` trains longer, on more data, with several seeds
and reports mean and spread; it is the profile the README's table comes from.
Every condition of a profile uses the same settings: nothing is tuned per
language or per condition.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mpm_framework.errors import ConfigError, did_you_mean


@dataclass
class Profile:
    name: str
    seeds: list[int] = field(default_factory=lambda: [0])
    # -- pivot LLM (a tiny Llama, trained from scratch) ---------------------------
    vocab_size: int = 800
    llm_hidden: int = 96
    llm_layers: int = 3
    llm_heads: int = 4
    llm_intermediate: int = 288
    llm_init_std: float = 0.1  # see Demo.init_pivot: 0.02 (transformers' default) is too small at this width
    corpus_documents: int = 12000
    # Share of the MPM pivot's describe/qa conversations whose context is in the
    # other language of an EN<->L pair (see corpus.py); 0 keeps only translate lines.
    corpus_cross_share: float = 0.5
    # A low-resource language in the pivot corpus: its documents are drawn with
    # this weight relative to each other language's 1 (1.0: no change).
    low_resource_lang: str = ""
    low_resource_share: float = 1.0
    pretrain_steps: int = 600
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    # -- vision encoder (tiny CLIP tower, trained from scratch in align) ----------
    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    vision_position_init_std: float = 0.5  # see experiment.init_position_embeddings
    connector: str = "mlp2x_gelu"
    # -- stages ---------------------------------------------------------------------
    align_samples: int = 8000
    align_steps: int = 300
    align_batch: int = 32
    align_lr: float = 2e-3
    instruct_samples: int = 8000
    instruct_steps: int = 100
    instruct_batch: int = 32
    instruct_lr: float = 1e-4
    instruct_caption_share: float = 0.3
    calibration_share: float = 0.02
    # Share of the English-data alignments' captions in the target languages
    # (split evenly over them); 0 is MPM's English-only alignment.
    align_target_share: float = 0.0
    # Share of the calibration (the "translated" target-language instructions)
    # corrupted like a poor machine translation: a dropped or substituted word,
    # or the response in English (datasets.corrupt_response).
    translation_noise: float = 0.0
    # -- evaluation -----------------------------------------------------------------
    eval_scenes: int = 30
    questions_per_scene: int = 2
    probe_scenes: int = 16  # text-only probe of the pivots' cross-lingual ability
    max_new_tokens: int = 48
    eval_batch: int = 64
    export_records: int = 500  # align/instruct records written to <out>/data (examples/recipes/toy.yaml)

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)


# Which stage of the job graph first reads each setting (``reuse.py``: a sweep
# point reuses an earlier point's pivots -- and alignments -- when they differ
# only in settings read later). A setting that is not listed here counts as
# read by pretraining, so a new one can never reuse stale work; the test
# ``test_every_setting_has_a_stage`` asks for each new setting to be placed.
ALIGN_SETTINGS = frozenset({
    "image_size", "patch_size", "vision_hidden", "vision_layers", "vision_heads", "vision_position_init_std",
    "connector", "align_samples", "align_steps", "align_batch", "align_lr", "align_target_share",
    "probe_scenes", "max_new_tokens", "eval_batch",  # the pivot probe runs in the align job
})
INSTRUCT_SETTINGS = frozenset({
    "instruct_samples", "instruct_steps", "instruct_batch", "instruct_lr", "instruct_caption_share",
    "calibration_share", "translation_noise", "eval_scenes", "questions_per_scene", "export_records",
})
PRETRAIN_SETTINGS = frozenset({
    "vocab_size", "llm_hidden", "llm_layers", "llm_heads", "llm_intermediate", "llm_init_std",
    "corpus_documents", "corpus_cross_share", "low_resource_lang", "low_resource_share", "pretrain_steps",
    "pretrain_batch", "pretrain_lr",
})


# The quick profile's languages when --langs is not given: the headline's three
# (the paper's zh, de, fr), so that its run stays within about 5 minutes on two
# cores however many packs are installed (with six it took 286 s and held 30
# scenes, against 60 here). Other profiles run every installed pack.
DEFAULT_LANGS: dict[str, tuple[str, ...]] = {"quick": ("zh", "de", "fr")}

PROFILES: dict[str, Profile] = {
    # 60 held-out scenes: with 30 the headline's CIs were about +-0.12 wide
    "quick": Profile(name="quick", eval_scenes=60),
    "full": Profile(
        name="full",
        seeds=[0, 1, 2],
        corpus_documents=40000,
        pretrain_steps=2500,
        align_samples=16000,
        align_steps=1000,
        instruct_steps=300,
        eval_scenes=80,
        probe_scenes=40,
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown demo profile '{name}'.{did_you_mean(name, PROFILES)} "
                          f"Profiles: {', '.join(PROFILES)}")
    return PROFILES[name]


def apply_overrides(profile: Profile, overrides: list[str]) -> Profile:
    """``key=value`` changes to a profile (``pretrain_steps=200``), type-checked."""
    fields = {f.name: f for f in dataclasses.fields(Profile)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"profile override {item!r} is not of the form key=value")
        if key not in fields or key == "name":
            raise ConfigError(f"unknown profile setting '{key}'.{did_you_mean(key, fields)} "
                              f"Settings: {', '.join(k for k in fields if k != 'name')}")
        current = getattr(profile, key)
        try:
            if isinstance(current, bool):
                value: Any = raw.lower() in ("1", "true", "yes")
            elif isinstance(current, int):
                value = int(raw)
            elif isinstance(current, float):
                value = float(raw)
            elif isinstance(current, list):
                value = [int(v) for v in raw.split(",") if v.strip()]
            else:
                value = raw
        except ValueError:
            raise ConfigError(f"profile setting {key} expects {type(current).__name__}, got {raw!r}") from None
        changes[key] = value
    return profile.replace(**changes)
