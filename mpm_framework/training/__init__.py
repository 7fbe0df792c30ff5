"""Training: data, stages, trainer, checkpoints, engines.

The public API is imported lazily (torch is loaded only when it is used)::

    from mpm_framework.training import train_stage, load_run, Stage, register_stage
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "train_stage": "trainer",
    "TrainResult": "trainer",
    "TrainingInterrupted": "trainer",
    "Trainer": "trainer",
    "load_run": "run_dir",
    "load_weights": "run_dir",
    "Stage": "stages",
    "PrepareContext": "stages",
    "register_stage": "stages",
    "get_stage": "stages",
    "stage_names": "stages",
    "default_freeze_sets": "stages",
    "TextStack": "stages",
    "Sample": "samples",
    "BadSample": "samples",
    "stage_config": "recipes",
    "run_chain": "launch",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
