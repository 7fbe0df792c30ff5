"""Build stacks from component names and configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .config.loading import resolve_config, typed_config
from .contracts.base import BuildContext
from .errors import ConfigError, PluginError
from .plugins import get_registry
from .seeding import seeded


def load_language(code: str):
    """The language pack registered under ``code`` (or an alias), checked
    against the pack contract (identity, phrases: a clear error lists what is missing)."""
    from .text.pack_loading import load_pack

    return load_pack(code)


def _build(kind: str, cfg: Any, context: BuildContext, seed: int = 0):
    reg = get_registry().get(kind, cfg.name)
    factory = reg.load_factory()
    config = typed_config(cfg)  # the one place a component's config becomes its dataclass
    # Random initialisation follows run.seed, one stream per component kind, and
    # leaves the caller's global RNG as it was (see seeding.py).
    with seeded(seed, f"build/{kind}"):
        try:
            return factory.from_config(config, context)
        except (AttributeError, TypeError) as exc:
            if _dict_style_access(exc):
                raise PluginError(
                    f"plugin {reg.plugin}: {kind} '{cfg.name}' reads its config like a dict ({exc}); "
                    f"from_config receives the config dataclass ({type(config).__name__}): write config.field "
                    "instead of config.get('field') / config['field'] (docs/plugins.md)") from exc
            raise


# What a plugin written for the DictConfig that from_config used to receive
# raises on the dataclass it gets now.
_DICT_STYLE = ("has no attribute 'get'", "has no attribute 'keys'", "has no attribute 'items'",
               "object is not subscriptable", "object is not iterable")


def _dict_style_access(exc: Exception) -> bool:
    return any(text in str(exc) for text in _DICT_STYLE)


# kind -> the section of ``model`` that configures it
COMPONENT_SECTIONS = {"llm": "llm", "vision": "vision", "connector": "connector", "decoder": "decoder"}


def component_config(kind: str, name: str, overrides: list[str] | dict[str, Any] | None = None) -> DictConfig:
    """The validated config of one component: its registered defaults with
    ``overrides`` applied, checked like a stack's (unknown keys get "did you
    mean"). ``overrides`` are ``"key=value"`` strings or a dict, relative to the
    component's section (``["path=runs/pivot"]`` for an LLM)."""
    section = COMPONENT_SECTIONS.get(kind)
    if section is None:
        from .errors import did_you_mean

        raise ConfigError(f"unknown component kind '{kind}'.{did_you_mean(kind, COMPONENT_SECTIONS)} "
                          f"Kinds: {', '.join(COMPONENT_SECTIONS)}")
    if isinstance(overrides, dict):
        cfg = resolve_config(**{section: name}, recipe={"model": {section: {**overrides, "name": name}}})
    else:
        cfg = resolve_config(**{section: name}, overrides=[f"model.{section}.{o}" for o in overrides or []])
    return cfg.model[section]


def build_component(kind: str, name: str, overrides: list[str] | dict[str, Any] | None = None, *,
                    context: BuildContext | None = None, seed: int = 0):
    """One registered component built as :func:`build_stack` builds it (same
    config validation, same seeded initialisation): ``build_component("llm",
    "llama", ["path=runs/pivot"])``. ``context`` carries what a component needs
    from the others (``llm_hidden_size`` for a connector or a decoder)."""
    cfg = component_config(kind, name, overrides)
    return _build(kind, cfg, context or BuildContext(), seed)


def load_stack(run_dir: str | Path, stage: str | None = None, device: str = "cpu",
               trust_remote_code: bool | None = None, *, dtype: dict[str, str] | None = None,
               quantize: dict[str, str] | None = None, overrides: list[str] | tuple[str, ...] = ()):
    """The trained stack of a run folder (its last finished stage, or ``stage``;
    a stage folder works too), rebuilt from the config the run saved, with its
    LoRA adapters and trained weights, in eval mode on ``device``.

    Inference settings, per component (the run's own otherwise): ``dtype``
    (``{"llm": "bf16"}``: built at that dtype, the trained weights converted as
    they load), ``quantize`` (``{"llm": "int8"}``: applied after the weights are
    loaded, the component's LoRA adapters merged first), or the same as
    ``overrides`` (``["model.llm.quantize=int8", "model.vision.dtype=bf16"]``).
    Any other key is a ConfigError naming what may be set on a trained run
    (``mpm_framework.inference.run_overrides``).

    ``trust_remote_code``: True lets code shipped with the models run (warning with
    the files); None keeps what the running command granted (``--trust-remote-code``);
    the folder's own config never decides (see ``mpm_framework.security``)."""
    import contextlib

    from .errors import MPMError
    from .inference.run_overrides import prepare_config, quantize_loaded, settings_from
    from .security import trusting_remote_code
    from .training.lora import apply_lora
    from .training.run_dir import load_weights, read_stage_config, stage_folder

    if not Path(run_dir).is_dir():
        raise MPMError(f"run directory not found: {run_dir}")
    folder = stage_folder(run_dir, stage)
    cfg = read_stage_config(folder)
    settings = settings_from(cfg, overrides, dtype, quantize)  # checked before anything is built
    modes = prepare_config(cfg, settings)
    grant = contextlib.nullcontext() if trust_remote_code is None else trusting_remote_code(trust_remote_code)
    with grant:
        stack = build_stack(cfg)
    apply_lora(stack, cfg.run.lora)
    load_weights(stack, folder)
    stack.to(device)
    quantize_loaded(stack, modes)  # after the move: int8 runs on the CPU only, and says so
    stack.eval()
    return stack


def build_stack(cfg: DictConfig, *, meta: bool = False):
    """A ChatStack (vision chosen) or PaintStack (decoder chosen) from a resolved config."""
    import torch

    from .stacks.chat import ChatStack
    from .stacks.paint import PaintStack

    model = cfg.model
    if model.llm is None:
        raise ConfigError("no pivot LLM chosen: pass --llm NAME or set model.llm.name")
    context = BuildContext(meta=meta)
    seed = int(OmegaConf.select(cfg, "run.seed", default=0) or 0)
    device_ctx = torch.device("meta") if meta else torch.device("cpu")
    with device_ctx:
        llm = _build("llm", model.llm, context, seed)
        context.llm_hidden_size = llm.hidden_size
        languages = {code: load_language(code) for code in model.languages}
        if model.vision is not None:
            vision = _build("vision", model.vision, context, seed)
            context.vision_hidden_size = vision.output_dim
            connector = _build("connector", model.connector, context, seed)
            return ChatStack(llm, vision, connector, languages, cfg)
        if model.decoder is not None:
            decoder = _build("decoder", model.decoder, context, seed)
            return PaintStack(llm, decoder, languages, cfg)
    raise ConfigError("choose a vision encoder (--vision) for a chat stack or a decoder (--decoder) for paint")


def compose(
    llm: str | None = None,
    vision: str | None = None,
    connector: str | None = None,
    decoder: str | None = None,
    lang: list[str] | str | None = None,
    config: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    meta: bool = False,
):
    """``compose(llm="llama", vision="clip", lang=["de"])`` -> a ready stack."""
    if isinstance(lang, str):
        lang = [lang]
    cfg = resolve_config(
        llm=llm, vision=vision, connector=connector, decoder=decoder, lang=lang,
        recipe=config, overrides=overrides,
    )
    return build_stack(cfg, meta=meta)
