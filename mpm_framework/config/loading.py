"""Layering: component defaults < recipe YAML < CLI ``key=value``; then validation.

The schema is assembled from the chosen components' own config dataclasses, so
a typo anywhere (``run.lrr``, ``model.llm.dtyp``) is caught with the full key
path and the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError, MPMError, did_you_mean, nearest
from ..registry import Registration
from .recipe_shape import check_shape, compose_file, syntax_error

COMPONENT_KEYS = {"llm": "llm", "vision": "vision", "connector": "connector", "decoder": "decoder"}
ROOT_SECTIONS = ("model", "data", "run", "stages")


class ComponentSwapWarning(UserWarning):
    """A component chosen on the command line replaced the recipe's, and the
    recipe's settings for the old component were dropped."""


@dataclasses.dataclass
class _NamedOnly:
    """Schema for components that declare no config class."""

    name: str = ""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A recipe file as a dict; syntax errors and sections of the wrong shape
    are a :class:`ConfigError` naming the file, the line and what was expected."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe not found: {p}")
    node = compose_file(p)
    try:
        data = OmegaConf.to_container(OmegaConf.load(p), resolve=False) if node is not None else {}
    except yaml.YAMLError as exc:
        raise syntax_error(p, exc) from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse {p}: {_first_line(exc)}") from None
    if not isinstance(data, dict):
        line = f", line {node.start_mark.line + 1}" if node is not None else ""
        raise ConfigError(f"{p}{line}: a recipe must be a mapping with model / data / run / stages sections, "
                          f"got a {type(data).__name__}")
    check_shape(data, str(p), node)
    return data  # type: ignore[return-value]


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)))  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad override: {exc}") from None


def _component_schema(reg: Registration | None) -> Any:
    if reg is None:
        return None
    cls = reg.load_config_class() or _NamedOnly
    node = OmegaConf.structured(cls)
    node.name = reg.name  # canonical name, also when chosen by alias
    return node


@functools.cache
def _field_choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """``{field: allowed values}`` for the ``Literal[...]`` fields of a config dataclass."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: omegaconf reports it
        return {}
    return {name: typing.get_args(hint) for name, hint in hints.items() if typing.get_origin(hint) is Literal}


def _check_choice(schema: DictConfig, key: str, value: Any, full: str) -> None:
    """A value outside a ``Literal[...]`` field's choices is a :class:`ConfigError`
    naming the allowed values and the nearest one. Checked here rather than left
    to omegaconf: older omegaconf releases do not enforce ``Literal``, and its
    own message suggests nothing."""
    cls = OmegaConf.get_type(schema)
    if not dataclasses.is_dataclass(cls):
        return
    choices = _field_choices(cls).get(key)
    if not choices or value in choices or value is None:
        return
    allowed = [str(c) for c in choices]
    raise ConfigError(
        f"invalid value {value!r} for '{full}'.{did_you_mean(str(value), allowed)} "
        f"Allowed: {', '.join(allowed)}"
    )


def _check_keys(user: Any, schema: Any, path: str) -> None:
    """Reject keys the schema does not know, naming the closest valid one."""
    if not isinstance(user, dict) or not isinstance(schema, DictConfig):
        return
    structured = OmegaConf.get_type(schema) not in (dict, None)
    known = {str(k) for k in schema.keys()}  # `in` is False for MISSING values
    for key, value in user.items():
        full = f"{path}.{key}" if path else str(key)
        if str(key) not in known:
            if not structured:
                continue
            valid = [str(k) for k in schema.keys()]
            hit = nearest(str(key), valid)
            hint = f" Did you mean '{path + '.' if path else ''}{hit}'?" if hit else ""
            raise ConfigError(
                f"unknown config key '{full}'.{hint} "
                f"Valid keys{' under ' + repr(path) if path else ''}: {', '.join(valid)}"
            )
        if structured and not isinstance(value, (dict, list)):
            _check_choice(schema, str(key), value, full)
        child = schema._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            _check_keys(value, child, full)
        elif isinstance(child, ListConfig) and isinstance(value, list):
            element_type = child._metadata.element_type
            if dataclasses.is_dataclass(element_type):
                element = OmegaConf.structured(element_type)
                for i, item in enumerate(value):
                    _check_keys(item, element, f"{full}[{i}]")


def _deep_get(d: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _chosen_name(kind: str, flags: dict[str, str | None], layers: list[dict[str, Any]]) -> str | None:
    if flags.get(kind):
        return flags[kind]
    for layer in reversed(layers):  # later layers win
        node = _deep_get(layer, "model", kind)
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and node.get("name"):
            return str(node["name"])
    return None


def _normalise_component(layer: dict[str, Any]) -> None:
    """Allow the shorthand ``model: {llm: llama}`` for ``model.llm.name``."""
    model = layer.get("model")
    if isinstance(model, dict):
        for kind in COMPONENT_KEYS:
            if isinstance(model.get(kind), str):
                model[kind] = {"name": model[kind]}


def resolve_config(
    *,
    llm: str | None = None,
    vision: str | None = None,
    connector: str | None = None,
    decoder: str | None = None,
    lang: list[str] | None = None,
    recipe: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    registry=None,
) -> DictConfig:
    """The fully merged and validated config (no torch is imported)."""
    from ..plugins import get_registry
    from ..training.config import DataConfig, RunConfig

    registry = registry or get_registry()
    layers: list[dict[str, Any]] = []
    if recipe is not None:
        layers.append(dict(recipe) if isinstance(recipe, dict) else load_yaml(recipe))
    if overrides:
        layers.append(parse_overrides(overrides))
    for i, layer in enumerate(layers):
        if i > 0 or not isinstance(recipe, (str, Path)):  # a file was checked with line numbers
            check_shape(layer, "the config overrides" if overrides and i == len(layers) - 1 else "the recipe")
        for key in [k for k in ROOT_SECTIONS if k in layer and layer[k] is None]:
            del layer[key]  # an empty section ("run:" alone) keeps the defaults
        unknown = [k for k in layer if k not in ROOT_SECTIONS]
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"unknown config section '{key}'.{did_you_mean(key, ROOT_SECTIONS)} "
                f"Sections: {', '.join(ROOT_SECTIONS)}"
            )
        _normalise_component(layer)

    flags = {"llm": llm, "vision": vision, "connector": connector, "decoder": decoder}
    model_schema: dict[str, Any] = {}
    for kind in COMPONENT_KEYS:
        name = _chosen_name(kind, flags, layers)
        vision = _chosen_name("vision", flags, layers)
        if kind == "connector" and name is None and vision:
            # An encoder that owns its bridge (BEiT-3 + mapping) pairs with "identity".
            name = registry.get("vision", vision).default_connector or "mlp2x_gelu"
        model_schema[kind] = _component_schema(registry.get(kind, name) if name else None)
    languages = lang or next(
        (_deep_get(layer, "model", "languages") for layer in reversed(layers)
         if _deep_get(layer, "model", "languages")), None
    ) or ["en"]
    languages = [registry.get("language", code).name for code in languages]
    if "en" not in languages:
        languages = ["en", *languages]
    model_schema["languages"] = languages

    schema = OmegaConf.create(
        {
            "model": model_schema,
            "data": OmegaConf.structured(DataConfig),
            "run": OmegaConf.structured(RunConfig),
            "stages": {},
        }
    )
    merged = schema
    for layer in layers:
        layer = dict(layer)
        model = dict(layer.get("model") or {})
        model.pop("languages", None)
        for kind, node in list(model.items()):
            if kind in COMPONENT_KEYS and isinstance(node, dict):
                node = _drop_replaced(kind, dict(node), flags, schema, registry)
                node = _retired_lora(kind, node, schema)
                node.pop("name", None)  # resolved above (an alias may differ)
                model[kind] = node
                if schema.model[kind] is None and node:
                    raise ConfigError(f"model.{kind} is configured but no {kind} was chosen")
        if model:
            layer["model"] = model
        else:
            layer.pop("model", None)
        _check_keys(layer, schema, "")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.create(layer))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"invalid config value: {_first_line(exc)}") from None
    for kind, cli_name in flags.items():
        if cli_name and merged.model[kind] is not None:
            merged.model[kind].name = registry.get(kind, cli_name).name
    _check_ranges(merged)
    return merged


def _canonical(kind: str, name: str, registry) -> str:
    try:
        return registry.get(kind, name).name
    except MPMError:
        return name


def _drop_replaced(kind: str, node: dict[str, Any], flags: dict[str, str | None], schema: DictConfig,
                   registry) -> dict[str, Any]:
    """Settings a layer gives for a component the command line replaced
    (``--vision beit3`` over a recipe's ``vision: {name: clip, ...}``) belong to
    the old component: drop them with a warning that names them, instead of
    failing on them with a suggestion from the new component's keys."""
    old = node.get("name")
    chosen = schema.model[kind]
    if not flags.get(kind) or not old or chosen is None:
        return node
    if _canonical(kind, str(old), registry) == chosen.name:
        return node
    dropped = [f"model.{kind}.{key}" for key in node if key != "name"]
    if dropped:
        warnings.warn(ComponentSwapWarning(
            f"--{kind} {flags[kind]} replaces the recipe's {kind} '{old}': dropped its settings "
            f"{', '.join(dropped)} (they belong to '{old}'; set {chosen.name}'s own with "
            f"model.{kind}.KEY=VALUE)"), stacklevel=4)
    return {"name": old}


def typed_config(node: Any) -> Any:
    """What a component's ``from_config`` (and its config class's ``preflight``)
    receives: the instance of its config dataclass, ``OmegaConf.to_object`` of
    the validated node (nested dataclasses too, interpolations resolved). A
    dataclass instance is returned as it is."""
    return OmegaConf.to_object(node) if isinstance(node, DictConfig) else node


def _retired_lora(kind: str, node: dict[str, Any], schema: DictConfig) -> dict[str, Any]:
    """``model.<kind>.lora`` was the llama plugin's own LoRA switch; LoRA has one
    switch now, ``run.lora``, for every component. Explicitly switched off
    (``enabled: false``, as every run folder saved before holds it) it is dropped;
    anything else is a :class:`ConfigError` that spells out the ``run.lora``
    settings to write. A component whose own config declares ``lora`` keeps it."""
    lora = node.get("lora")
    chosen = schema.model[kind]
    if lora is None or (chosen is not None and "lora" in chosen):
        return node
    node = {k: v for k, v in node.items() if k != "lora"}
    if isinstance(lora, dict) and lora.get("enabled") is False and not lora.get("adapter_path"):
        return node
    raise ConfigError(retired_lora_message(kind, lora if isinstance(lora, dict) else {}))


def retired_lora_message(kind: str, lora: dict[str, Any]) -> str:
    """What to write instead of ``model.<kind>.lora`` (see :func:`_retired_lora`)."""
    if lora.get("adapter_path"):  # the adapter brings its own r, alpha and target modules
        moved: dict[str, Any] = {"adapter_path": lora["adapter_path"]}
    else:
        moved = {"r": lora.get("r", 8), "alpha": lora.get("alpha", 16)}
        moved.update({k: lora[k] for k in ("dropout", "target_modules") if k in lora})
    if kind != "llm":
        moved["components"] = [kind]
    settings = " ".join(f"run.lora.{k}={_flow(v)}" for k, v in moved.items())
    message = (f"model.{kind}.lora was removed: LoRA has one switch for every component, run.lora "
               f"(adapters on run.lora.components, default [llm]). Write {settings} instead, or in a recipe "
               f"run: {{lora: {{{', '.join(f'{k}: {_flow(v)}' for k, v in moved.items())}}}}}")
    return message


def _flow(value: Any) -> str:
    return f"[{','.join(str(v) for v in value)}]" if isinstance(value, (list, tuple, ListConfig)) else str(value)


def migrate_saved_lora(data: dict[str, Any]) -> dict[str, Any]:
    """A run folder's ``config.yaml`` written while the llama plugin had its own
    LoRA (``model.llm.lora.enabled`` / ``adapter_path``): the same adapter as ``run.lora`` (peft
    injects the same layers, so the saved weights keep their names). Recipes
    are not rewritten: there the old key is an error naming the new one."""
    node = _deep_get(data, "model", "llm")
    lora = node.get("lora") if isinstance(node, dict) else None
    if not isinstance(lora, dict) or not (lora.get("enabled") or lora.get("adapter_path")):
        return data
    run = dict(data.get("run") or {})
    if int((run.get("lora") or {}).get("r") or 0) > 0:
        raise ConfigError("this run's config.yaml sets both model.llm.lora and run.lora; keep run.lora only")
    run["lora"] = {"r": lora.get("r", 8), "alpha": lora.get("alpha", 16), "dropout": lora.get("dropout", 0.0),
                   "target_modules": list(lora.get("target_modules") or []), "components": ["llm"],
                   "adapter_path": str(lora.get("adapter_path") or "")}
    model = dict(data["model"])
    model["llm"] = {k: v for k, v in node.items() if k != "lora"}
    return {**data, "model": model, "run": run}


def _check_ranges(cfg: DictConfig) -> None:
    """Numbers outside their valid range (run.lr <= 0, a share above 1, ...),
    in the top-level sections and in every stage's overrides, all at once."""
    from ..training.config import range_problems

    problems = range_problems(cfg.run, cfg.data)
    for name, stage in (cfg.get("stages") or {}).items():
        if not isinstance(stage, DictConfig):
            continue
        try:
            run = OmegaConf.merge(cfg.run, stage.run) if stage.get("run") is not None else None
            data = OmegaConf.merge(cfg.data, stage.data) if stage.get("data") is not None else None
        except OmegaConfBaseException as exc:
            raise ConfigError(f"invalid config value in stages.{name}: {_first_line(exc)}") from None
        problems += [p for p in range_problems(run, data, f"stages.{name}.") if p not in problems]
    if problems:
        raise ConfigError("invalid config value" + (f": {problems[0]}" if len(problems) == 1 else
                                                    "s:\n  " + "\n  ".join(problems)))


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    key = getattr(exc, "full_key", None)
    head = lines[0] if lines else type(exc).__name__
    return f"{key}: {head}" if key else head


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def save_config(cfg: DictConfig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(to_yaml(cfg), encoding="utf-8")
