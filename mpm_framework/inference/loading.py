"""Stacks for inference: composed from names, or a trained run directory.

A run directory is self-describing (its resolved config and trainable weights,
written by the trainer), so loading one needs neither the recipe nor the
training data: ``mpm_framework.composition.load_stack`` rebuilds the stack from it.
Both ways go through the public composition API (``build_stack``,
``build_component``, ``load_stack``); this module only adds the checks and the
device placement the commands share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, MPMError


def load_run_stack(run_dir: str | Path, trust_remote_code: bool | None = None,
                   overrides: list[str] | tuple[str, ...] = ()):
    """The stack saved in a training run directory (:func:`mpm_framework.composition.load_stack`).
    Code shipped with its models runs only when granted: ``trust_remote_code=True`` or
    the command's ``--trust-remote-code`` (None); never because the folder's config
    says so (``mpm_framework.security``). ``overrides``: the command's ``key=value``
    overrides, of which a trained run takes only ``model.<component>.dtype`` and
    ``model.<component>.quantize`` (anything else: a ConfigError naming those)."""
    from ..composition import load_stack

    return load_stack(run_dir, trust_remote_code=trust_remote_code, overrides=overrides)


def spec_overrides(spec) -> list[str]:
    """The ``key=value`` overrides given to ``mpm compose`` (none without a spec)."""
    return list(getattr(spec, "overrides", None) or [])


def _place(module, device: str | None):
    if device:
        import torch

        try:
            module.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise MPMError(f"cannot move the model to '{device}': {str(exc).splitlines()[0]}") from None
    return module


def _load_stack(spec, checkpoint: str | Path | None, device: str | None, trust_remote_code: bool | None,
                kind: type, wrong_kind: str):
    """A run directory's stack (``checkpoint``) or the composed spec's, checked to be a
    ``kind`` (else ``wrong_kind`` says what to choose) and placed on ``device``."""
    with _granted(trust_remote_code):
        if checkpoint is not None:
            stack = load_run_stack(checkpoint, overrides=spec_overrides(spec))
        else:
            from ..composition import build_stack

            stack = build_stack(spec.resolve())
    if not isinstance(stack, kind):
        raise ConfigError(wrong_kind)
    return _place(stack, device)


def load_chat_stack(spec=None, checkpoint: str | Path | None = None, device: str | None = None,
                    trust_remote_code: bool | None = None):
    """A ChatStack from a run directory (``checkpoint``) or from the composed spec.
    ``trust_remote_code``: see :func:`load_run_stack` (None: what the command granted)."""
    from ..stacks.chat import ChatStack

    return _load_stack(spec, checkpoint, device, trust_remote_code, ChatStack,
                       "chat and caption/VQA evaluation need a chat stack: choose a vision encoder (--vision)")


def load_paint_stack(spec=None, checkpoint: str | Path | None = None, device: str | None = None,
                     trust_remote_code: bool | None = None):
    """A PaintStack from a run directory (``checkpoint``) or from the composed spec."""
    from ..stacks.paint import PaintStack

    return _load_stack(spec, checkpoint, device, trust_remote_code, PaintStack,
                       "paint needs a paint stack: choose an image decoder (--decoder unet) and no --vision")


def pivot_llm_from_config(cfg) -> Any:
    """The pivot LLM alone, built from a resolved config's ``model.llm`` section
    (seeded by ``run.seed``, as :func:`mpm_framework.composition.build_stack` builds it)."""
    from omegaconf import OmegaConf

    from ..composition import build_component

    if cfg.model.llm is None:
        raise ConfigError("no pivot LLM chosen: pass --llm NAME or --checkpoint RUN_DIR")
    section = OmegaConf.to_container(cfg.model.llm, resolve=True)
    seed = int(OmegaConf.select(cfg, "run.seed", default=0) or 0)
    return build_component("llm", section.pop("name"), section, seed=seed)


def load_pivot_llm(spec=None, checkpoint: str | Path | None = None, device: str | None = None,
                   trust_remote_code: bool | None = None):
    """Only the pivot LLM (the alignment probe needs nothing else)."""
    with _granted(trust_remote_code):
        if checkpoint is not None:
            return _place(load_run_stack(checkpoint, overrides=spec_overrides(spec)).llm, device)
        return _place(pivot_llm_from_config(spec.resolve()), device)


def _granted(trust_remote_code: bool | None):
    """The remote-code grant of a load: the caller's explicit choice, else the command's."""
    import contextlib

    from ..security import trusting_remote_code

    return contextlib.nullcontext() if trust_remote_code is None else trusting_remote_code(trust_remote_code)


def describe_model(stack=None, checkpoint: str | Path | None = None, spec=None) -> dict[str, Any]:
    """Component names for reports."""
    out: dict[str, Any] = {}
    config = getattr(stack, "config", None)
    if config is None and spec is not None and checkpoint is None:
        try:
            config = spec.resolve()
        except MPMError:
            config = None
    model = getattr(config, "model", None) if config is not None else None
    if model is not None:
        for kind in ("llm", "vision", "connector"):
            node = model.get(kind) if hasattr(model, "get") else getattr(model, kind, None)
            if node is not None:
                out[kind] = str(node.get("name") if hasattr(node, "get") else node)
    if checkpoint is not None:
        out["checkpoint"] = str(checkpoint)
    return out
