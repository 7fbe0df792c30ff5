"""Low-rank adapters: MPM's one LoRA (``run.lora``), through peft's
model-agnostic injection into any component whose target layers are
``nn.Linear`` (the stack keeps its own forward; no peft model wrappers).

The adapters live inside the component as peft ``LoraLayer``s, so their
parameters are named ``<component>.<module path>.lora_A.default.weight``.
:func:`merge_lora` folds them into the base layers in place (export,
inference) and :func:`merged_state_dict` gives the weights with them folded in
while the model keeps training (a plugin's ``save_pretrained``).
``run.lora.adapter_path`` starts the adapters from a saved PEFT adapter. A run saved
with an LLM plugin's former own LoRA (``model.llm.lora``) loads as ``run.lora``:
see ``mpm_framework.config.loading.migrate_saved_lora``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError


def _adapter_path(lora: Any) -> str:
    return str(getattr(lora, "adapter_path", "") or "")


def lora_enabled(lora: Any) -> bool:
    return lora is not None and (int(lora.r) > 0 or bool(_adapter_path(lora)))


def apply_lora(stack: nn.Module, lora: Any) -> list[str]:
    """Inject adapters into ``lora.components``; returns the adapter parameter
    names. With ``lora.adapter_path`` (a PEFT adapter folder) the adapter's own
    r / alpha / target modules are used and its weights start the adapters."""
    if not lora_enabled(lora):
        return []
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError("run.lora needs peft: pip install peft") from None
    from ..quantize import is_quantized

    components = stack.components()
    saved = _read_adapter(_adapter_path(lora), list(lora.components)) if _adapter_path(lora) else None
    for name in lora.components:
        if name not in components or components[name] is None:
            raise ConfigError(f"run.lora.components names '{name}'; components: {', '.join(components)}")
        if is_quantized(components[name]):
            raise ConfigError(f"run.lora trains float weights but model.{name}.quantize=int8 (an inference "
                              f"setting): set model.{name}.quantize=none, or merge the adapter first (a "
                              f"trained run loads at int8 with --checkpoint RUN model.{name}.quantize=int8: "
                              "its adapters are merged, then quantised)")
        config = saved[0] if saved else LoraConfig(
            r=int(lora.r), lora_alpha=float(lora.alpha), lora_dropout=float(lora.dropout),
            target_modules=list(lora.target_modules))
        try:
            inject_adapter_in_model(config, components[name])
        except ValueError as exc:
            raise ConfigError(f"LoRA for '{name}': {exc} (run.lora.target_modules="
                              f"{sorted(config.target_modules)})") from None
    if saved:
        _load_adapter(components[lora.components[0]], saved[1], _adapter_path(lora))
    return lora_parameter_names(stack)


def _read_adapter(path: str, components: list[str]) -> tuple[Any, dict[str, torch.Tensor]]:
    """(LoraConfig, tensors) of a PEFT adapter folder (``save_pretrained`` of a
    PeftModel: adapter_config.json + adapter_model.safetensors or .bin)."""
    from peft import LoraConfig

    from ..security import load_torch_file
    from ..weight_files import read_safetensors

    folder = Path(path).expanduser()
    if len(components) != 1:
        raise ConfigError(f"run.lora.adapter_path loads one adapter into one component, but "
                          f"run.lora.components is {components}: name one")
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(f"run.lora.adapter_path: no PEFT adapter in {folder} (adapter_config.json missing); "
                          "give a folder written by PeftModel.save_pretrained (or mpm export --adapter)")
    config = LoraConfig.from_pretrained(str(folder))
    config.inference_mode = False  # saved adapters say True; these train on (the trainer picks what trains)
    files = [folder / "adapter_model.safetensors", folder / "adapter_model.bin"]
    file = next((f for f in files if f.is_file()), None)
    if file is None:
        raise ConfigError(f"run.lora.adapter_path: {folder} has adapter_config.json but no adapter_model "
                          ".safetensors/.bin")
    tensors = read_safetensors(file) if file.suffix == ".safetensors" else load_torch_file(file, map_location="cpu")
    return config, tensors


def _load_adapter(component: nn.Module, tensors: dict[str, torch.Tensor], path: str) -> None:
    """Copy a PEFT adapter's tensors into the injected layers. PEFT names them
    ``base_model.model.<module path>.lora_A.weight`` over the model it wrapped;
    the component may hold that model under a prefix (the llama plugin's ``hf.``),
    so each module path is matched as a suffix of exactly one adapter layer."""
    layers = dict(_lora_layers(component))
    params = dict(component.named_parameters())
    for key, value in tensors.items():
        module, sep, tail = key.removeprefix("base_model.model.").partition(".lora_")
        if not sep:
            continue  # not an adapter weight (a saved embedding or head: modules_to_save)
        found = [n for n in layers if n == module or n.endswith("." + module)]
        if len(found) != 1:
            raise ConfigError(f"run.lora.adapter_path {path}: the adapter's layer '{module}' matches "
                              f"{len(found)} LoRA layers of this model ({', '.join(found[:3]) or 'none'}); "
                              "it was trained for another architecture")
        name = f"{found[0]}.lora_{tail.replace('.weight', '.default.weight').replace('.bias', '.default.bias')}"
        if name not in params or params[name].shape != value.shape:
            raise ConfigError(f"run.lora.adapter_path {path}: {key} does not fit {name}")
        with torch.no_grad():
            params[name].copy_(value)


def is_lora_parameter(name: str) -> bool:
    """A peft adapter weight (``...lora_A.default.weight``)."""
    return ".lora_" in name


def lora_parameter_names(stack: nn.Module) -> list[str]:
    return [n for n, _ in stack.named_parameters() if is_lora_parameter(n)]


def _lora_layers(module: nn.Module) -> list[tuple[str, Any]]:
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # without peft nothing can hold adapters
        return []
    return [(name, m) for name, m in module.named_modules() if isinstance(m, LoraLayer)]


def merge_lora(module: nn.Module) -> int:
    """Fold every adapter into its base layer and put the plain layer back in
    its place (parameter names lose ``.base_layer``); returns how many layers."""
    return _restore_base_layers(module, merge=True)


def unload_lora(module: nn.Module) -> int:
    """Put every base layer back as it was before the adapters (the adapters are
    dropped, not merged); returns how many layers."""
    return _restore_base_layers(module, merge=False)


def _restore_base_layers(module: nn.Module, merge: bool) -> int:
    layers = _lora_layers(module)
    for name, layer in layers:
        if merge:
            layer.merge()
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, layer.get_base_layer())
    return len(layers)


def merged_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s weights with every active adapter folded in, under the names
    the module has without adapters; ``module`` itself is left untouched."""
    state = {k: v for k, v in module.state_dict().items() if not is_lora_parameter(k)}
    for name, layer in _lora_layers(module):
        key = f"{name}.base_layer.weight" if name else "base_layer.weight"
        weight = state[key].clone()
        with torch.no_grad():
            for adapter in layer.active_adapters:
                if adapter in layer.lora_A:
                    weight += layer.get_delta_weight(adapter).to(weight.dtype)
        state[key] = weight
    return {k.replace(".base_layer.", ".").removeprefix("base_layer."): v for k, v in state.items()}
