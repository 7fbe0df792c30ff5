"""Stacks for inference: composed from names, or a trained run directory.

A run directory is self-describing (its resolved config and trainable weights,
written by the trainer), so loading one needs neither the recipe nor the
training data: ``mpm_framework.training.load_run`` rebuilds the stack from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, MPMError


def load_run_stack(run_dir: str | Path):
    """The stack saved in a training run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise MPMError(f"run directory not found: {path}")
    try:
        from ..training import load_run
    except ImportError as exc:
        raise MPMError(f"this installation cannot load training runs: {exc}") from None
    return load_run(path)


def _place(module, device: str | None):
    if device:
        import torch

        try:
            module.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise MPMError(f"cannot move the model to '{device}': {str(exc).splitlines()[0]}") from None
    return module


def load_chat_stack(spec=None, checkpoint: str | Path | None = None, device: str | None = None):
    """A ChatStack from a run directory (``checkpoint``) or from the composed spec."""
    from ..stacks.chat import ChatStack

    if checkpoint is not None:
        stack = load_run_stack(checkpoint)
    else:
        from ..composition import build_stack

        stack = build_stack(spec.resolve())
    if not isinstance(stack, ChatStack):
        raise ConfigError("chat and caption/VQA evaluation need a chat stack: choose a vision encoder (--vision)")
    return _place(stack, device)


def load_pivot_llm(spec=None, checkpoint: str | Path | None = None, device: str | None = None):
    """Only the pivot LLM (the alignment probe needs nothing else)."""
    if checkpoint is not None:
        return _place(load_run_stack(checkpoint).llm, device)
    from ..contracts.base import BuildContext
    from ..plugins import get_registry

    cfg = spec.resolve()
    if cfg.model.llm is None:
        raise ConfigError("no pivot LLM chosen: pass --llm NAME or --checkpoint RUN_DIR")
    factory = get_registry().get("llm", cfg.model.llm.name).load_factory()
    return _place(factory.from_config(cfg.model.llm, BuildContext()), device)


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
