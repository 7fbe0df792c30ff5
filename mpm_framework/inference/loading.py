"""Stacks for inference: composed from names, or a trained run directory.

A run directory is self-describing (its resolved config and trainable weights,
written by the trainer), so loading one needs neither the recipe nor the
training data: ``mpm_framework.training.load_run`` rebuilds the stack from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, MPMError


def load_run_stack(run_dir: str | Path, trust_remote_code: bool | None = None):
    """The stack saved in a training run directory. Code shipped with its models runs
    only when granted: ``trust_remote_code=True`` or the command's ``--trust-remote-code``
    (None); never because the folder's config says so (``mpm_framework.security``)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise MPMError(f"run directory not found: {path}")
    try:
        from ..training import load_run
    except ImportError as exc:
        raise MPMError(f"this installation cannot load training runs: {exc}") from None
    return load_run(path, trust_remote_code=trust_remote_code)


def _place(module, device: str | None):
    if device:
        import torch

        try:
            module.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise MPMError(f"cannot move the model to '{device}': {str(exc).splitlines()[0]}") from None
    return module


def load_chat_stack(spec=None, checkpoint: str | Path | None = None, device: str | None = None,
                    trust_remote_code: bool | None = None):
    """A ChatStack from a run directory (``checkpoint``) or from the composed spec.
    ``trust_remote_code``: see :func:`load_run_stack` (None: what the command granted)."""
    from ..stacks.chat import ChatStack

    with _granted(trust_remote_code):
        if checkpoint is not None:
            stack = load_run_stack(checkpoint)
        else:
            from ..composition import build_stack

            stack = build_stack(spec.resolve())
    if not isinstance(stack, ChatStack):
        raise ConfigError("chat and caption/VQA evaluation need a chat stack: choose a vision encoder (--vision)")
    return _place(stack, device)


def load_pivot_llm(spec=None, checkpoint: str | Path | None = None, device: str | None = None,
                   trust_remote_code: bool | None = None):
    """Only the pivot LLM (the alignment probe needs nothing else)."""
    with _granted(trust_remote_code):
        if checkpoint is not None:
            return _place(load_run_stack(checkpoint).llm, device)
        from ..contracts.base import BuildContext
        from ..plugins import get_registry

        cfg = spec.resolve()
        if cfg.model.llm is None:
            raise ConfigError("no pivot LLM chosen: pass --llm NAME or --checkpoint RUN_DIR")
        factory = get_registry().get("llm", cfg.model.llm.name).load_factory()
        return _place(factory.from_config(cfg.model.llm, BuildContext()), device)


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
