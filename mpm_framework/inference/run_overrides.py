"""What may change when a trained run is loaded for inference: each component's
dtype and quantisation (``model.<component>.dtype=bf16``,
``model.<component>.quantize=int8``), nothing else.

A run folder's config is the one its weights were trained with; any other key
(a layer count, a connector, a path) would describe a model the weights do not
fit, so it is refused naming the keys that may be set. The values are checked
against the config's choices (:data:`mpm_framework.config.choices.Dtype`,
:data:`~mpm_framework.config.choices.Quantize`).

:func:`mpm_framework.composition.load_stack` applies them in this order: the
stack is built from the run's config with the dtypes asked for and every
quantisation off (int8 layers could not take trained float weights), the
run's LoRA adapters are injected and its weights loaded, the adapters of each
component to quantise are merged into its weights (int8 layers hold no
adapters), then the component quantises itself
(:meth:`mpm_framework.contracts.base.Component.quantize_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config.choices import DTYPES
from ..errors import ConfigError, did_you_mean
from ..quantize import QUANTIZE_CHOICES

#: The settings of a component that may change on a trained run.
INFERENCE_KEYS = ("dtype", "quantize")


@dataclass
class InferenceSettings:
    """Per component: the dtype to build at and the quantisation to apply after
    the weights are loaded (components not named keep the run's own)."""

    dtype: dict[str, str] = field(default_factory=dict)
    quantize: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.dtype or self.quantize)


def settable_keys(cfg: Any) -> list[str]:
    """``model.<component>.<key>`` of every inference key the run's components declare."""
    keys = []
    for component, section in (cfg.model or {}).items():
        if hasattr(section, "keys") and "name" in section:  # a chosen component (not None, not the languages)
            keys += [f"model.{component}.{key}" for key in INFERENCE_KEYS if key in section]
    return keys


def _refuse(what: str, cfg: Any) -> ConfigError:
    allowed = settable_keys(cfg)
    return ConfigError(
        f"{what}: a trained run (--checkpoint) keeps the config it was trained with; only its inference "
        f"settings may change: {', '.join(allowed) or '(none: no component of this run has a dtype or quantize)'} "
        f"(dtype: {'|'.join(DTYPES)}; quantize: {'|'.join(QUANTIZE_CHOICES)})")


def parse_overrides(overrides: Sequence[str], cfg: Any) -> InferenceSettings:
    """``["model.llm.quantize=int8", "model.vision.dtype=bf16"]`` -> settings,
    checked against the run's config ``cfg``."""
    settings = InferenceSettings()
    for override in overrides:
        key, sep, value = override.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 3 or parts[0] != "model" or parts[2] not in INFERENCE_KEYS:
            raise _refuse(f"'{override}' cannot be set", cfg)
        getattr(settings, parts[2])[parts[1]] = value.strip().strip("'\"")
    return settings


def check_settings(settings: InferenceSettings, cfg: Any) -> None:
    """Every named component is in the run and declares the key; every value is a valid choice."""
    from ..config.choices import torch_dtype
    from ..quantize import check_quantize

    allowed = settable_keys(cfg)
    for key, values in (("dtype", settings.dtype), ("quantize", settings.quantize)):
        for component, value in values.items():
            name = f"model.{component}.{key}"
            if name not in allowed:
                raise _refuse(f"'{name}' cannot be set{did_you_mean(name, allowed)}", cfg)
            if key == "dtype":
                torch_dtype(value, name)
            else:
                check_quantize(value, name)


def settings_from(cfg: Any, overrides: Sequence[str] = (), dtype: Mapping[str, str] | None = None,
                  quantize: Mapping[str, str] | None = None) -> InferenceSettings:
    """The checked settings of ``overrides`` and the ``dtype`` / ``quantize`` maps together."""
    settings = parse_overrides(overrides, cfg)
    settings.dtype.update(dtype or {})
    settings.quantize.update(quantize or {})
    check_settings(settings, cfg)
    return settings


def prepare_config(cfg: Any, settings: InferenceSettings) -> dict[str, str]:
    """Set the asked dtypes in ``cfg`` (in place) and switch every quantisation
    off for the build; returns ``{component: mode}`` to apply once the weights
    are loaded (the asked mode, else the run's own)."""
    modes = {}
    for component, section in cfg.model.items():
        if not (hasattr(section, "keys") and "name" in section):
            continue
        if component in settings.dtype:
            section.dtype = settings.dtype[component]
        if "quantize" not in section:
            continue
        mode = settings.quantize.get(component, section.quantize)
        if mode != "none":
            dtype = section.get("dtype", "fp32")
            if dtype != "fp32":  # refused before anything is built (int8 weights, fp32 activations)
                raise ConfigError(f"model.{component}.quantize={mode} needs model.{component}.dtype=fp32, "
                                  f"not {dtype}")
            modes[component] = mode
        section.quantize = "none"
    return modes


def quantize_loaded(stack: Any, modes: Mapping[str, str]) -> dict[str, int]:
    """Merge each component's LoRA adapters into its weights, then quantise it
    (its ``quantize_weights``); records the mode in ``stack.config``. Returns
    ``{component: layers quantised}``."""
    from ..training.lora import merge_lora

    components = stack.components()
    done = {}
    for component, mode in modes.items():
        module = components[component]
        merge_lora(module)  # int8 layers hold no adapters: fold them in first
        done[component] = module.quantize_weights(mode)
        stack.config.model[component].quantize = mode
    return done


def split_for_runs(run_dirs: Sequence[Any], overrides: Sequence[str]) -> list[list[str]]:
    """The overrides each of several runs takes (``mpm serve`` with a chat run and a
    paint run): each goes to the runs whose components declare its key; one that no
    run declares goes to all, whose loading refuses it naming what may be set."""
    from ..training.run_dir import read_stage_config, stage_folder

    if len(run_dirs) < 2:
        return [list(overrides) for _ in run_dirs]
    keys = [set(settable_keys(read_stage_config(stage_folder(run)))) for run in run_dirs]
    out: list[list[str]] = [[] for _ in run_dirs]
    for override in overrides:
        key = override.partition("=")[0].strip()
        takers = [i for i, k in enumerate(keys) if key in k] or range(len(run_dirs))
        for i in takers:
            out[i].append(override)
    return out
