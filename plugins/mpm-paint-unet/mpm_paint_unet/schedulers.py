"""Noise schedules: one forward (noising) process for training, a chosen sampler.

Training always noises with the DDPM forward process of the schedule; DDIM and
Euler sample the very same process (diffusers builds each from the shared
schedule config), so a decoder trained once can be sampled with any of them.
"""

from __future__ import annotations

from typing import Any

from mpm_framework.errors import ConfigError, did_you_mean

from .config import SCHEDULER_CHOICES

# The schedule-defining keys; anything else in a scheduler_config.json is
# sampler-specific (PNDM's skip_prk_steps, ...) and is left to that class.
SCHEDULE_KEYS = (
    "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
    "prediction_type", "timestep_spacing", "steps_offset", "rescale_betas_zero_snr",
)


def _classes() -> dict[str, Any]:
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
    )

    return {
        "ddpm": DDPMScheduler,
        "ddim": DDIMScheduler,
        "euler": EulerDiscreteScheduler,
        "euler_ancestral": EulerAncestralDiscreteScheduler,
        "dpmsolver": DPMSolverMultistepScheduler,
    }


def check_scheduler_name(name: str) -> None:
    if name not in SCHEDULER_CHOICES:
        raise ConfigError(
            f"unknown scheduler '{name}'.{did_you_mean(name, SCHEDULER_CHOICES)} "
            f"Choose one of: {', '.join(SCHEDULER_CHOICES)}"
        )


def random_schedule_config(cfg: Any, space: str | None = None) -> dict[str, Any]:
    """The schedule of a random decoder (or of a checkpoint without a scheduler
    config); unset betas follow the space it works in."""
    latent = (space or cfg.space) == "latent"
    schedule = cfg.beta_schedule or ("scaled_linear" if latent else "linear")
    start = cfg.beta_start if cfg.beta_start is not None else (0.00085 if latent else 0.0001)
    end = cfg.beta_end if cfg.beta_end is not None else (0.012 if latent else 0.02)
    return {
        "num_train_timesteps": int(cfg.num_train_timesteps),
        "beta_schedule": schedule,
        "beta_start": float(start),
        "beta_end": float(end),
        "prediction_type": cfg.prediction_type,
        "timestep_spacing": "trailing",
        "steps_offset": 0,
    }


def schedule_from_json(config: dict[str, Any]) -> dict[str, Any]:
    """The schedule part of a saved ``scheduler_config.json`` (any class)."""
    return {k: v for k, v in config.items() if k in SCHEDULE_KEYS}


def build_noise_scheduler(schedule: dict[str, Any]):
    """The DDPM forward process used for training (``add_noise``, velocities)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config({**schedule, "clip_sample": False})


def build_sampler(name: str, schedule: dict[str, Any], clip_sample: bool = False):
    """A fresh sampler (samplers hold per-run state: one per ``sample`` call).

    ``clip_sample`` clips DDPM/DDIM's predicted clean image to [-1, 1]: right
    in pixel space (it keeps guided samples from saturating), wrong for
    latents, which are not bounded."""
    check_scheduler_name(name)
    extra: dict[str, Any] = {}
    if name in ("ddpm", "ddim"):
        extra["clip_sample"] = clip_sample
    return _classes()[name].from_config({**schedule, **extra})
