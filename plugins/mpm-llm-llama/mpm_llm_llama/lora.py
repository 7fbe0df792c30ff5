"""LoRA through peft: attach, load, merge, and merged weights for saving.

peft injects its layers into the transformers model in place, so the plugin
keeps calling the transformers model (and its decoder directly, for the
answer-only head) with the adapters active; the PeftModel wrapper is kept
only for peft's own save/merge methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mpm_framework.errors import ConfigError
from mpm_framework.training.lora import is_lora_parameter

from .config import LoraOptions


def attach_lora(model: torch.nn.Module, options: LoraOptions) -> Any:
    """Wrap ``model`` with a fresh adapter, or load one from ``options.adapter_path``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if options.adapter_path:
        path = Path(options.adapter_path).expanduser()
        if not (path / "adapter_config.json").is_file():
            raise ConfigError(f"no peft adapter at {path} (adapter_config.json missing); "
                              "set model.llm.lora.adapter_path to a directory saved by save_adapter()")
        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in options.target_modules if t not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ConfigError(f"lora.target_modules {missing} are not modules of this model. "
                          f"Linear layers: {', '.join(linear)}")
    config = LoraConfig(
        r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
        target_modules=list(options.target_modules), task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights with every active adapter folded in, under the plain
    transformers key names; the model itself is left untouched."""
    from peft.tuners.lora import LoraLayer

    state = {k: v for k, v in model.state_dict().items() if not is_lora_parameter(k)}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        key = f"{name}.base_layer.weight"
        weight = state[key].clone()
        with torch.no_grad():
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weight += module.get_delta_weight(adapter).to(weight.dtype)
        state[key] = weight
    return {k.replace(".base_layer.", "."): v for k, v in state.items()}
