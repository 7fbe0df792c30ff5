"""Checks that need only the config, run before any model is built.

Building a real-size stack takes minutes; finding out afterwards that no data
was configured, a path has a typo or the stage cannot train the chosen
components wastes them. :func:`preflight` reports every such problem at once,
in well under a second, without importing torch (built-in stages are described
here by name; a custom stage's own checks still run when it is built).
"""

from __future__ import annotations

import difflib
import glob
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..config.loading import typed_config
from ..errors import ConfigError, did_you_mean
from ..storage import check_writable

# stage -> (record kinds it trains on, components it needs, components it must not have)
BUILTIN_STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "pretrain": (("text", "instruct"), ("llm",), ()),
    "align": (("pairs", "instruct"), ("llm", "vision"), ("decoder",)),
    "instruct": (("pairs", "instruct"), ("llm", "vision"), ("decoder",)),
    "paint": (("pairs",), ("llm", "decoder"), ("vision",)),
}
HOW_TO_CHOOSE = {"llm": "--llm NAME", "vision": "--vision NAME", "decoder": "--decoder NAME"}
FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".json", ".txt", ".model", ".yaml", ".jinja")
PRESET_KEYS = ("preset", "size")  # config fields that pick an architecture preset


def stage_list(cfg: Any, spec: str | None) -> list[str]:
    """The stages ``--stage`` names (``align``, ``align,instruct``, ``all``)."""
    spec = spec or str(OmegaConf.select(cfg, "run.stage", default="align"))
    if spec == "all":
        names = [str(k) for k in (cfg.get("stages") or {})]
        if not names:
            raise ConfigError("--stage all needs a 'stages:' section in the recipe listing the stages to chain")
        return names
    return [s.strip() for s in spec.split(",") if s.strip()]


def _section(cfg: Any, stage: str, name: str) -> Any:
    base = cfg.get(name)
    override = ((cfg.get("stages") or {}).get(stage) or {}).get(name)
    if override is None:
        return base
    return OmegaConf.merge(base, override) if base is not None else override


def _is_model_path(value: str) -> bool:
    """A model setting that names a local file or folder, not a hub id (``org/model``)."""
    return value.startswith(("/", "./", "../", "~")) or value.endswith(FILE_SUFFIXES)


def _is_hub_id(path: str, fmt: str) -> bool:
    """A data source that names a hub dataset (``org/name``) rather than a file."""
    if fmt == "hub":
        return True
    local = path.startswith(("/", "./", "../", "~")) or Path(path).suffix != "" or Path(path).exists()
    return fmt == "auto" and "/" in path and not local


def _source_problems(source: Any, where: str, kinds: tuple[str, ...] | None, stage: str) -> list[str]:
    path = str(source.get("path") or "")
    fmt = str(source.get("format") or "auto")
    if not path:
        return [f"{where}.path is not set"]
    problems = []
    if kinds is not None and str(source.get("kind")) not in kinds:
        problems.append(f"{where} holds '{source.get('kind')}' records but stage '{stage}' trains on "
                        f"{'/'.join(kinds)} (set {where}.kind)")
    if _is_hub_id(path, fmt):
        return problems  # a hub dataset id: checked when it is downloaded
    expanded = os.path.expanduser(path)
    if any(ch in expanded for ch in "*?["):
        if not glob.glob(expanded, recursive=True):
            problems.append(f"{where}.path: no file matches {path}")
    elif not os.path.exists(expanded):
        parent = Path(expanded).parent
        # File names share extensions, so only a near-identical name is a likely typo.
        close = difflib.get_close_matches(Path(expanded).name, os.listdir(parent), n=1, cutoff=0.8) \
            if parent.is_dir() else []
        hint = f" Did you mean '{close[0]}'?" if close else ""
        problems.append(f"{where}.path: {path} does not exist.{hint}")
    elif os.path.isfile(expanded):
        try:
            with open(expanded, "rb") as f:
                f.read(1)
        except OSError as exc:
            problems.append(f"{where}.path: cannot read {path}: {exc.strerror or exc}")
    root = source.get("image_root")
    if root and not os.path.isdir(os.path.expanduser(str(root))):
        problems.append(f"{where}.image_root: folder {root} does not exist")
    return problems


def _component_problems(cfg: Any, registry: Any) -> list[str]:
    problems = []
    model = cfg.get("model") or {}
    for kind in ("llm", "vision", "connector", "decoder"):
        node = model.get(kind)
        if node is None:
            continue
        reg = registry.get(kind, str(node.name))
        problems += [f"model.{kind} ({reg.name}, plugin '{reg.plugin}'): {p}" for p in reg.problems()]
        for key in ("path", "tokenizer_path", "vocab"):
            value = node.get(key) if isinstance(node, DictConfig) and key in node else None
            if value and isinstance(value, str) and _is_model_path(value) and not Path(value).expanduser().exists():
                problems.append(f"model.{kind}.{key}: {value} does not exist")
        config_class = reg.load_config_class() if reg.config else None  # config classes are torch-free
        check = getattr(config_class, "preflight", None)
        if callable(check):
            problems += [f"model.{kind}: {p}" for p in check(typed_config(node))]
    for code in model.get("languages") or []:
        reg = registry.get("language", str(code))
        problems += [f"language pack '{code}' (plugin '{reg.plugin}') is not installed properly: {p}"
                     for p in reg.problems()]
    return problems


def _has_checkpoint(folder: Path) -> bool:
    return any((folder / "checkpoints").glob("step-*/trainer_state.json")) or (folder / "final").exists()


def preflight(cfg: Any, stages: list[str], *, resume: bool = False, has_samples: bool = False,
              registry: Any = None) -> None:
    """Raise one :class:`ConfigError` listing everything that would make
    training ``stages`` fail and can be seen from ``cfg`` alone: the stage's
    components, data sources set and readable, model paths, language packs,
    a writable run folder not already holding a run. ``has_samples``: the
    caller passes in-memory training samples (the Python API)."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    problems: list[str] = []
    model = cfg.get("model") or {}
    if model.get("llm") is None:
        problems.append("no pivot LLM chosen: pass --llm NAME or set model.llm.name")
    problems += _component_problems(cfg, registry)
    custom = _registered_custom_stages()
    for stage in stages:
        spec = BUILTIN_STAGES.get(stage)
        if spec is None and ":" not in stage and stage not in custom:
            known = [*BUILTIN_STAGES, *custom]
            problems.append(f"unknown stage '{stage}'.{did_you_mean(stage, known)} Stages: {', '.join(known)} "
                            "(or 'package.module:StageClass')")
            continue
        kinds, needs, excludes = spec if spec is not None else (None, ("llm",), ())
        for kind in needs:
            if kind != "llm" and model.get(kind) is None:
                problems.append(f"stage '{stage}' needs a {kind}: compose with {HOW_TO_CHOOSE[kind]}")
        for kind in excludes:
            if model.get(kind) is not None and all(model.get(k) is not None for k in needs):
                problems.append(f"stage '{stage}' does not train a {kind}; compose without --{kind}")
        run, data = _section(cfg, stage, "run"), _section(cfg, stage, "data")
        folder = Path(str(run.output_dir)) / stage
        finished = resume and (folder / "final" / "summary.json").is_file()
        if not (data.get("train") or has_samples or finished):
            problems.append(f"no training data for stage '{stage}': set data.train (e.g. "
                            f"data.train='[{{path: pairs.jsonl}}]' or a recipe's stages.{stage}.data.train)")
        for split in ("train", "eval"):
            for i, source in enumerate(data.get(split) or []):
                where = f"{'stages.' + stage + '.' if _overridden(cfg, stage, split) else ''}data.{split}[{i}]"
                problems += _source_problems(source, where, kinds if split == "train" else None, stage)
        if run.get("init_from") and not Path(str(run.init_from)).expanduser().exists():
            problems.append(f"run.init_from: {run.init_from} does not exist")
        adapter = (run.get("lora") or {}).get("adapter_path")
        if adapter and not (Path(str(adapter)).expanduser() / "adapter_config.json").is_file():
            problems.append(f"run.lora.adapter_path: no PEFT adapter in {adapter} (adapter_config.json missing)")
        if run.get("deepspeed_config") and not Path(str(run.deepspeed_config)).is_file():
            problems.append(f"run.deepspeed_config: {run.deepspeed_config} does not exist")
        if not resume and not run.get("overwrite") and _has_checkpoint(folder):
            problems.append(f"{folder} already holds a training run of stage '{stage}'. Continue it with --resume "
                            "(run.resume=true), train into another run.output_dir, or start over with "
                            "run.overwrite=true (deletes its checkpoints)")
        unwritable = check_writable(Path(str(run.output_dir)))
        if unwritable:
            problems.append(f"run.output_dir {run.output_dir}: {unwritable}")
    problems = list(dict.fromkeys(problems))
    if problems:
        head = "cannot start training (nothing was built):"
        raise ConfigError(f"{head} {problems[0]}" if len(problems) == 1 else head + "\n  " + "\n  ".join(problems))


def _overridden(cfg: Any, stage: str, split: str) -> bool:
    return bool((((cfg.get("stages") or {}).get(stage) or {}).get("data") or {}).get(split))


def _registered_custom_stages() -> list[str]:
    """Stages added with ``register_stage`` (only when the stage module is loaded:
    importing it would import torch)."""
    import sys

    module = sys.modules.get("mpm_framework.training.stages")
    return [n for n in module.stage_names() if n not in BUILTIN_STAGES] if module is not None else []


def preset_summary(cfg: Any) -> str | None:
    """``"model.llm (cpm-bee): size 10b; model.vision (beit3): preset large"``
    for the components whose config picks an architecture preset."""
    parts = []
    model = cfg.get("model") or {}
    for kind in ("llm", "vision", "connector", "decoder"):
        node = model.get(kind)
        if not isinstance(node, DictConfig):
            continue
        for key in PRESET_KEYS:
            if key in node and isinstance(node.get(key), str):
                parts.append(f"model.{kind} ({node.name}): {key} {node.get(key)}")
    return "; ".join(parts) or None
