"""Low-rank adapters through peft's model-agnostic injection: works on any
component whose target layers are ``nn.Linear``, without peft's model wrappers
(the stack keeps its own forward)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError


def lora_enabled(lora: Any) -> bool:
    return lora is not None and int(lora.r) > 0


def apply_lora(stack: nn.Module, lora: Any) -> list[str]:
    """Inject adapters into ``lora.components``; returns the adapter parameter names."""
    if not lora_enabled(lora):
        return []
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError("run.lora.r > 0 needs peft: pip install peft") from None
    components = stack.components()
    for name in lora.components:
        if name not in components or components[name] is None:
            raise ConfigError(f"run.lora.components names '{name}'; components: {', '.join(components)}")
        config = LoraConfig(r=int(lora.r), lora_alpha=float(lora.alpha), lora_dropout=float(lora.dropout),
                            target_modules=list(lora.target_modules))
        try:
            inject_adapter_in_model(config, components[name])
        except ValueError as exc:
            raise ConfigError(f"LoRA for '{name}': {exc} (run.lora.target_modules="
                              f"{list(lora.target_modules)})") from None
    return lora_parameter_names(stack)


def is_lora_parameter(name: str) -> bool:
    """A peft adapter weight (``...lora_A.default.weight``), whoever injected it:
    ``run.lora`` here or an LLM plugin's own adapter (``model.llm.lora``)."""
    return ".lora_" in name


def lora_parameter_names(stack: nn.Module) -> list[str]:
    return [n for n, _ in stack.named_parameters() if is_lora_parameter(n)]
