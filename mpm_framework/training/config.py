"""The ``data`` and ``run`` sections of a recipe (torch-free schemas).

Field meanings are documented in ``docs/data-formats.md`` (data) and in the
comments here (run). Names that existed before the trainer was written are kept
as they were; everything added has a default that reproduces the old behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from ..config.choices import DTYPES


@dataclass
class DataSource:
    path: str = MISSING  # file, glob, folder, or a hub dataset id (format: hub)
    format: str = "auto"  # auto | jsonl | json | csv | parquet | imagefolder | webdataset | hub
    kind: str = "pairs"  # pairs (image-text) | instruct (LLaVA conversations) | text
    lang: str = "en"  # language tag of records that carry none
    weight: float = 1.0  # sampling weight when several sources are mixed
    image_root: str | None = None  # relative image paths resolve here (default: the file's folder)
    split: str = "train"  # hub / parquet split
    text_field: str | None = None  # default: text, caption, txt, sentence
    image_field: str | None = None  # default: image, jpg, jpeg, png, webp, image_path, file_name
    max_samples: int | None = None  # use only the first N records (before shuffling)


@dataclass
class DataConfig:
    train: list[DataSource] = field(default_factory=list)
    eval: list[DataSource] = field(default_factory=list)
    max_length: int = 512
    packing: bool = False  # several short samples per row, attention kept inside each sample
    streaming: bool = False  # iterate sources lazily (data larger than memory); webdataset always streams
    shuffle: bool = True
    shuffle_buffer: int = 10_000  # streaming sources shuffle through a buffer of this many records
    num_workers: int = 0  # background processes preparing batches (0: in the training process)
    max_bad_fraction: float = 0.2  # past this share of skipped samples the run stops
    bad_check_after: int = 32  # the share is enforced once this many records were read
    bad_examples: int = 5  # how many skipped records the report names
    calibration_share: float = 0.0  # instruct stage: share of target-language calibration pairs
    calibration_langs: list[str] = field(default_factory=list)  # default: every non-English language


@dataclass
class LoraConfig:
    """Low-rank adapters (peft) instead of full fine-tuning of a component: MPM's
    one LoRA switch (``training/lora.py``)."""

    r: int = 0  # 0: off (unless adapter_path is set)
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    components: list[str] = field(default_factory=lambda: ["llm"])
    # A PEFT adapter folder (PeftModel.save_pretrained) to start from: its r, alpha and
    # target modules replace the fields above, its weights the fresh adapters (one component).
    adapter_path: str = ""


@dataclass
class RunConfig:
    stage: str = "align"  # align | instruct | pretrain | paint | a registered stage | "pkg.mod:Stage"
    output_dir: str = "runs/default"  # each stage writes <output_dir>/<stage>/
    seed: int = 0
    max_steps: int = 100  # optimizer steps
    batch_size: int = 8  # micro-batch per process
    grad_accum: int = 1  # global batch = batch_size * grad_accum * processes
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0  # lr at step 0 = lr * this (VisCPM: 1e-6 -> 1e-5 is 0.1)
    schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.0  # cosine/linear decay floor as a share of lr
    max_grad_norm: float = 1.0  # 0: no clipping
    precision: str = "fp32"  # fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    engine: str = "single"  # single | ddp | deepspeed
    nproc: int = 1  # processes to launch (through torchrun) when not already launched
    zero_stage: int = 2
    offload: bool = False
    deepspeed_config: str | None = None  # JSON merged over the shipped zero<stage>.json
    find_unused_parameters: bool = True  # DDP: text-only batches leave the connector unused
    save_every: int = 100
    keep_last: int = 2
    resume: bool = False  # continue from the newest checkpoint of this stage
    overwrite: bool = False  # allow starting over in a stage folder that holds checkpoints
    init_from: str | None = None  # stage folder / run folder / .safetensors whose weights start this stage
    eval_every: int = 0
    eval_batches: int = 20  # micro-batches of data.eval per evaluation
    log_every: int = 10
    progress: bool = True
    trainable: list[str] | None = None  # overrides the stage's default trainable set
    frozen: list[str] | None = None
    lora: LoraConfig = field(default_factory=LoraConfig)
    extra: dict[str, Any] = field(default_factory=dict)


# -- value ranges -------------------------------------------------------------------
# Checked when the config is resolved (mpm_framework.config.loading), so a bad
# value is reported before anything is built, not by the optimizer hours later.

CHOICES: dict[str, tuple[str, ...]] = {
    "schedule": ("cosine", "linear", "constant"),
    "precision": DTYPES,
    "engine": ("single", "ddp", "deepspeed"),
}
# field: (lowest, highest, lowest allowed itself) -- None: unbounded
RUN_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "lr": (0.0, None, False),
    "batch_size": (1, None, True),
    "grad_accum": (1, None, True),
    "max_steps": (1, None, True),
    "weight_decay": (0.0, None, True),
    "eps": (0.0, None, False),
    "warmup_steps": (0, None, True),
    "warmup_start_factor": (0.0, 1.0, True),
    "min_lr_ratio": (0.0, 1.0, True),
    "max_grad_norm": (0.0, None, True),
    "nproc": (1, None, True),
    "zero_stage": (0, 3, True),
    "save_every": (0, None, True),
    "keep_last": (0, None, True),
    "eval_every": (0, None, True),
    "eval_batches": (1, None, True),
    "log_every": (0, None, True),
}
DATA_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "max_length": (1, None, True),
    "shuffle_buffer": (1, None, True),
    "num_workers": (0, None, True),
    "max_bad_fraction": (0.0, 1.0, True),
    "bad_check_after": (0, None, True),
    "bad_examples": (0, None, True),
    "calibration_share": (0.0, 1.0, True),  # below 1: the stage's own data must keep a share
}
HIGH_EXCLUSIVE = {"calibration_share"}
SOURCE_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "weight": (0.0, None, False),
    "max_samples": (1, None, True),
}
LORA_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "r": (0, None, True),
    "alpha": (0.0, None, False),
    "dropout": (0.0, 1.0, True),
}


def _rule(low: float | None, high: float | None, inclusive: bool, high_inclusive: bool = True) -> str:
    if high is None:
        return f"{'>=' if inclusive else '>'} {low:g}"
    if not high_inclusive:
        return f"in [{low:g}, {high:g})"
    return f"between {low:g} and {high:g}"


def _check(section: Any, ranges: dict[str, tuple[float | None, float | None, bool]], path: str) -> list[str]:
    problems = []
    for key, (low, high, inclusive) in ranges.items():
        value = section.get(key) if hasattr(section, "get") else getattr(section, key, None)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # unset or not a number: the schema reports wrong types
        high_inclusive = key not in HIGH_EXCLUSIVE
        too_low = low is not None and (value < low if inclusive else value <= low)
        too_high = high is not None and (value > high if high_inclusive else value >= high)
        if too_low or too_high or value != value:  # NaN fails every rule
            problems.append(f"{path}.{key} must be {_rule(low, high, inclusive, high_inclusive)}, got {value}")
    return problems


def range_problems(run: Any, data: Any, path: str = "") -> list[str]:
    """Every value of ``run`` / ``data`` outside its valid range, as
    ``"run.lr must be > 0, got 0.0"`` lines (``path`` prefixes the keys,
    e.g. ``stages.align.``)."""
    problems: list[str] = []
    if run is not None:
        problems += _check(run, RUN_RANGES, f"{path}run")
        for key, choices in CHOICES.items():
            value = run.get(key)
            if value is not None and str(value) not in choices:
                problems.append(f"{path}run.{key} must be one of {', '.join(choices)}, got '{value}'")
        betas = run.get("betas")
        if betas is not None and (len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas)):
            problems.append(f"{path}run.betas must be two numbers in [0, 1), got {list(betas)}")
        if run.get("lora") is not None:
            lora = run.get("lora")
            if int(lora.get("r") or 0) > 0:
                problems += _check(lora, LORA_RANGES, f"{path}run.lora")
    if data is not None:
        problems += _check(data, DATA_RANGES, f"{path}data")
        for split in ("train", "eval"):
            for i, source in enumerate(data.get(split) or []):
                problems += _check(source, SOURCE_RANGES, f"{path}data.{split}[{i}]")
    return problems
