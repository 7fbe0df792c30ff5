"""Learning-rate schedules: warmup, then cosine / linear decay or constant.

The schedule is a pure function of the step, so nothing about it needs saving
for an exact resume."""

from __future__ import annotations

import math

from ..errors import ConfigError, did_you_mean

SCHEDULES = ("cosine", "linear", "constant")


def lr_factor(step: int, max_steps: int, warmup_steps: int = 0, schedule: str = "cosine",
              warmup_start_factor: float = 0.0, min_ratio: float = 0.0) -> float:
    """Multiplier of the base lr for optimizer step ``step`` (0-based)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown run.schedule '{schedule}'.{did_you_mean(schedule, SCHEDULES)} "
                          f"Schedules: {', '.join(SCHEDULES)}")
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_start_factor + (1.0 - warmup_start_factor) * step / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if schedule == "linear":
        decay = 1.0 - progress
    else:
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * decay


def lr_at(step: int, run) -> float:
    """The lr of ``step`` under the ``run`` config section."""
    return float(run.lr) * lr_factor(step, int(run.max_steps), int(run.warmup_steps), str(run.schedule),
                                     float(run.warmup_start_factor), float(run.min_lr_ratio))
