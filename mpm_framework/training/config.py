"""The ``data`` and ``run`` sections of a recipe (torch-free schemas)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class DataSource:
    path: str = MISSING
    format: str = "auto"  # auto | jsonl | csv | parquet | imagefolder | webdataset | hub
    kind: str = "pairs"  # pairs (image-text) | instruct (LLaVA conversations) | text
    lang: str = "en"
    weight: float = 1.0
    image_root: str | None = None


@dataclass
class DataConfig:
    train: list[DataSource] = field(default_factory=list)
    eval: list[DataSource] = field(default_factory=list)
    max_length: int = 512
    packing: bool = False
    streaming: bool = False
    num_workers: int = 0
    max_bad_fraction: float = 0.2  # past this share of skipped samples the run stops
    calibration_share: float = 0.0  # instruct stage: share of target-language calibration pairs
    calibration_langs: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    stage: str = "align"  # align | instruct | paint | pretrain
    output_dir: str = "runs/default"
    seed: int = 0
    max_steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | linear | constant
    max_grad_norm: float = 1.0
    precision: str = "fp32"  # fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    engine: str = "single"  # single | ddp | deepspeed
    zero_stage: int = 2
    offload: bool = False
    deepspeed_config: str | None = None
    save_every: int = 100
    keep_last: int = 2
    eval_every: int = 0
    log_every: int = 10
    trainable: list[str] | None = None  # overrides the stage's default trainable set
    frozen: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
