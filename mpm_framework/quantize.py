"""Int8 quantisation of a model's linear layers for inference.

``model.<component>.quantize: int8`` stores each ``nn.Linear`` weight as int8
(per-output-channel scales) and computes with int8 matmuls whose activations
are quantised on the fly (dynamic quantisation).

Backend, chosen by measurement (``docs/inference-memory.md``): on CPU torch's
own dynamic int8 (``torch.ao.quantization.quantize_dynamic``, fbgemm/onednn
kernels). Measured on this machine (1 thread, 1024->4096->1024 MLP, batch 1):
fp32 2.4 ms (min 1.8), torch dynamic int8 0.29 ms (min 0.20), torchao 0.18
``Int8DynamicActivationInt8WeightConfig`` 33 ms and ``Int8WeightOnlyConfig``
7.2 ms (its CPU path falls back to dequantise + fp matmul), optimum-quanto
int8 53 ms (the issue's figure). ``torch.ao.quantization`` is deprecated
upstream but present in torch 2.13; when it disappears the error below says
so. GPU int8/int4 would go through torchao, which is not a dependency yet:
asking for int8 on a CUDA model is an error that says this.
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Iterable

from torch import nn

from .config.choices import Quantize
from .errors import ConfigError, did_you_mean

QUANTIZE_CHOICES: tuple[str, ...] = typing.get_args(Quantize)  # the config's choices, written once


def check_quantize(value: str, field: str = "quantize") -> str:
    """``value`` if it is a known quantisation, else a ConfigError naming ``field``."""
    if value not in QUANTIZE_CHOICES:
        raise ConfigError(f"unknown {field} {value!r}.{did_you_mean(value, QUANTIZE_CHOICES)} "
                          f"Choose one of {', '.join(QUANTIZE_CHOICES)}")
    return value


def quantizable(module: nn.Module) -> bool:
    """An ``nn.Linear``, or a module that says which one it computes (``to_linear()``:
    e.g. a linear layer with a fixed output scale folded into its weight)."""
    return isinstance(module, nn.Linear) or callable(getattr(module, "to_linear", None))


def quantize_linear_int8(module: nn.Module, skip: Iterable[str] = (), field: str = "quantize") -> int:
    """Replace every ``nn.Linear`` of ``module`` (in place; names in ``skip`` and
    their children excepted) by its dynamic-int8 counterpart; returns how many.
    The module must be fp32 on the CPU (int8 weights, fp32 activations)."""
    skip = tuple(skip)
    names = {name for name, sub in module.named_modules()
             if quantizable(sub) and not any(name == s or name.startswith(s + ".") for s in skip)}
    for name in sorted(names):  # modules that compute a linear layer become one first
        sub = module.get_submodule(name)
        if not isinstance(sub, nn.Linear):
            parent, _, child = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, child, sub.to_linear())
    if not names:
        return 0
    weight = module.get_submodule(next(iter(names))).weight
    if weight.device.type != "cpu":
        raise ConfigError(f"{field}=int8 runs on the CPU only (torch's dynamic int8 kernels); on "
                          f"{weight.device.type} use dtype=bf16/fp16 (GPU int8 needs torchao, not installed)")
    if weight.dtype.is_floating_point and weight.dtype.itemsize != 4:
        raise ConfigError(f"{field}=int8 needs dtype fp32 (int8 weights, fp32 activations), "
                          f"not {str(weight.dtype).removeprefix('torch.')}")
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # removed upstream
        raise ConfigError(f"{field}=int8 needs torch.ao.quantization.quantize_dynamic, which this "
                          f"torch does not have ({exc})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice, once per call: the module doc says why
        # per output channel: one scale per row keeps outlier rows from costing the others precision
        quantize_dynamic(module, qconfig_spec=dict.fromkeys(names, per_channel_dynamic_qconfig), inplace=True)
    return len(names)


def is_quantized(module: nn.Module) -> bool:
    """Whether any layer of ``module`` holds int8 weights."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules())
