"""CPM-Bee configs (torch-free): the architecture of each named size and the
component config that ``model.llm`` validates against."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpm_framework.config.choices import Dtype, Quantize
from mpm_framework.errors import ConfigError, did_you_mean

# The compressed CPM-Bee models (BMCook) keep all 48 blocks of the 10B model but
# drop whole attention or FFN sub-blocks: 19 attention and 24 FFN sub-blocks
# survive (CPM-Bee README). These are the surviving indices, read from the
# ``mask_modules`` list of a published 2B config; the README gives the same
# counts for 1B/5B, so they share it. A checkpoint always wins: the loader
# infers the mask from which keys the file holds.
PRUNED_ATTENTION_LAYERS = (0, 2, 8, 9, 14, 16, 17, 20, 21, 24, 26, 29, 31, 33, 39, 41, 44, 46, 47)
PRUNED_FFN_LAYERS = (0, 1, 2, 3, 5, 8, 9, 11, 12, 14, 16, 18, 20, 24, 26, 29, 31, 33, 35, 39, 41, 44, 46, 47)


def pruned_mask(num_layers: int = 48) -> tuple[tuple[bool, bool], ...]:
    """``mask_modules`` of the compressed models: (attention masked, FFN masked) per block."""
    return tuple((i not in PRUNED_ATTENTION_LAYERS, i not in PRUNED_FFN_LAYERS) for i in range(num_layers))


@dataclass(frozen=True)
class CPMBeeArch:
    """The architecture, named as in the official JSON configs (``cpm-bee-10b.json``)."""

    vocab_size: int
    dim_model: int
    dim_ff: int
    num_layers: int
    num_heads: int
    dim_head: int
    position_bias_num_buckets: int = 256
    position_bias_num_segment_buckets: int = 256
    position_bias_max_distance: int = 2048
    eps: float = 1e-6
    # (attention masked, FFN masked) per block; None = every block is complete.
    mask_modules: tuple[tuple[bool, bool], ...] | None = None

    def __post_init__(self) -> None:
        if self.mask_modules is not None and len(self.mask_modules) != self.num_layers:
            raise ConfigError(
                f"mask_modules has {len(self.mask_modules)} entries but the model has {self.num_layers} layers"
            )

    def has_attention(self, layer: int) -> bool:
        return self.mask_modules is None or not self.mask_modules[layer][0]

    def has_ffn(self, layer: int) -> bool:
        return self.mask_modules is None or not self.mask_modules[layer][1]

    @property
    def attention_layers(self) -> list[int]:
        return [i for i in range(self.num_layers) if self.has_attention(i)]

    @property
    def ffn_layers(self) -> list[int]:
        return [i for i in range(self.num_layers) if self.has_ffn(i)]

    def replace(self, **changes: Any) -> CPMBeeArch:
        return dataclasses.replace(self, **changes)

    # -- the official JSON format ------------------------------------------------
    def to_official(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "vocab_size": self.vocab_size,
            "dim_model": self.dim_model,
            "dim_ff": self.dim_ff,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "dim_head": self.dim_head,
            "dropout_p": 0.0,
            "position_bias_num_buckets": self.position_bias_num_buckets,
            "position_bias_num_segment_buckets": self.position_bias_num_segment_buckets,
            "position_bias_max_distance": self.position_bias_max_distance,
            "eps": self.eps,
            "half": True,
        }
        if self.mask_modules is not None:
            out["mask_modules"] = [list(m) for m in self.mask_modules]
        return out

    @classmethod
    def from_official(cls, data: dict[str, Any]) -> CPMBeeArch:
        """Read an official config dict (``cpm-bee-10b.json``) or the Hugging Face
        port's ``config.json`` (``hidden_size``, ``num_attention_heads``, ...)."""
        aliases = {"hidden_size": "dim_model", "num_attention_heads": "num_heads",
                   "num_hidden_layers": "num_layers"}
        data = {aliases.get(k, k): v for k, v in data.items()}
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("vocab_size", "dim_model", "dim_ff", "num_layers", "num_heads", "dim_head")
                   if n not in data]
        if missing:
            raise ConfigError(f"CPM-Bee config lacks {', '.join(missing)}")
        kwargs = {k: v for k, v in data.items() if k in names}
        if kwargs.get("mask_modules") is not None:
            kwargs["mask_modules"] = tuple((bool(a), bool(f)) for a, f in kwargs["mask_modules"])
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: str | Path) -> CPMBeeArch:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read CPM-Bee config {path}: {exc}") from None
        return cls.from_official(data)


OFFICIAL_VOCAB_SIZE = 86583

ARCHS: dict[str, CPMBeeArch] = {
    # A test-sized model: full bucket tables (so bucket semantics are the real
    # ones), vocabulary size taken from the tokenizer (0 = not fixed).
    "tiny": CPMBeeArch(vocab_size=0, dim_model=64, dim_ff=128, num_layers=2, num_heads=4, dim_head=16),
    # Compressed models (CPM-Bee README: attention width 1280 / 2048 / 4096,
    # FFN width 1024 / 5120 / 10240, model width 4096). The head split of the
    # 2B model is that of its published config (32 x 64); 5B keeps the 10B
    # split (32 x 128); for 1B, 32 x 40 is inferred (same head count).
    "1b": CPMBeeArch(OFFICIAL_VOCAB_SIZE, 4096, 1024, 48, 32, 40, mask_modules=pruned_mask()),
    "2b": CPMBeeArch(OFFICIAL_VOCAB_SIZE, 4096, 5120, 48, 32, 64, mask_modules=pruned_mask()),
    "5b": CPMBeeArch(OFFICIAL_VOCAB_SIZE, 4096, 10240, 48, 32, 128, mask_modules=pruned_mask()),
    # The official cpm-bee-10b.json (also the LLM of VisCPM).
    "10b": CPMBeeArch(OFFICIAL_VOCAB_SIZE, 4096, 10240, 48, 32, 128),
}


def get_arch(size: str) -> CPMBeeArch:
    key = size.lower().replace("cpm-bee-", "")
    if key not in ARCHS:
        raise ConfigError(f"unknown CPM-Bee size '{size}'.{did_you_mean(key, ARCHS)} Sizes: {', '.join(ARCHS)}")
    return ARCHS[key]


@dataclass
class CPMBeeLLMConfig:
    """``model.llm`` for ``cpm-bee``.

    ``path`` is an official checkpoint (``.pt``/``.bin`` read with
    ``weights_only=True``, or ``.safetensors``; VisCPM files whose LLM keys start
    with ``llm.`` work too) or a directory holding one plus ``vocab.txt`` and
    optionally the official ``config.json``. Without ``path`` only ``size: tiny``
    starts from random weights. ``vocab`` is the official ``vocab.txt``; without
    it the tiny model uses a built-in test vocabulary.

    Like every MPM component with size presets, the default is the real size
    (10b, VisCPM's LLM); ask for ``size: tiny`` explicitly for a small random model.
    """

    name: str = "cpm-bee"
    size: str = "10b"  # tiny | 1b | 2b | 5b | 10b (the real size by default)
    path: str | None = None
    vocab: str | None = None
    dtype: Dtype = "fp32"  # fp32 | bf16 | fp16
    quantize: Quantize = "none"  # none | int8: int8 linear layers for inference (CPU, fp32; mpm_framework.quantize)
    attention: str = "sdpa"  # sdpa | eager
    gradient_checkpointing: bool = False
    max_length: int = 2048  # rows longer than this are cut (as VisCPM's item builder)
    max_depth: int = 8  # segment-tree depth used for relation buckets (VisCPM uses 8)
    strict: bool = True  # missing / unexpected checkpoint keys are an error
    seed: int = 0  # random init of models without a checkpoint
    # Architecture overrides on top of the size preset (tests, experiments).
    arch: dict[str, Any] = field(default_factory=dict)


    @staticmethod
    def preflight(config: CPMBeeLLMConfig) -> list[str]:
        """What building would reject, found from the config alone (called by the
        trainer's preflight before anything is built, with the config instance)."""
        size = str(config.size or "")
        try:
            get_arch(size)
        except ConfigError as exc:
            return [str(exc)]
        if size.lower().replace("cpm-bee-", "") != "tiny" and not config.path:
            return [f"cpm-bee size '{size}' needs its weights: set model.llm.path to the official checkpoint, "
                    "or model.llm.size=tiny for a small random model"]
        return []


ATTENTION_BACKENDS = ("sdpa", "eager")


def check_choice(value: str, choices: tuple[str, ...], key: str) -> str:
    if value not in choices:
        raise ConfigError(f"model.llm.{key}: '{value}' is not one of {', '.join(choices)}.{did_you_mean(value, choices)}")
    return value
