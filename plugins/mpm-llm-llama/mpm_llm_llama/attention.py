"""Attention backends: transformers' ``sdpa`` and ``eager``, and xformers on GPU.

transformers has no xformers backend, so one is registered under the name
``xformers`` in its attention and mask interfaces: masks are built as for
sdpa (boolean, or None for plain causal attention) and the kernel is
``xformers.ops.memory_efficient_attention``. A tensor that is not on a GPU
goes through sdpa instead, so a model loaded on a GPU and moved to the CPU
still runs.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mpm_framework.errors import ConfigError, did_you_mean

from .config import ATTENTION_BACKENDS

LOG = logging.getLogger("mpm_llm_llama")
_registered = False


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _on_gpu(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda


def resolve_attention(name: str) -> str:
    """The transformers ``attn_implementation`` for a configured backend."""
    if name not in ATTENTION_BACKENDS:
        raise ConfigError(
            f"unknown attention backend {name!r} (model.llm.attn_implementation).{did_you_mean(name, ATTENTION_BACKENDS)}"
            f" Backends: {', '.join(ATTENTION_BACKENDS)}"
        )
    if name != "xformers":
        return name
    if not _cuda_available():
        LOG.warning("attn_implementation=xformers needs a CUDA GPU; this machine has none, using sdpa")
        return "sdpa"
    try:
        import xformers.ops  # noqa: F401
    except ImportError:
        raise ConfigError(
            "attn_implementation=xformers needs the xformers package: install the build that matches "
            "your torch (pip install 'mpm-llm-llama[gpu]' with torch pinned), or use sdpa"
        ) from None
    register_xformers()
    return "xformers"


def fit_to_architecture(model_cls: Any, attn: str) -> str:
    """The backend the architecture can run: BLOOM and some others have no sdpa
    path (eager then), and only architectures written against transformers'
    attention interface can take a registered kernel such as xformers."""
    if model_cls is None:
        return attn
    name = getattr(model_cls, "__name__", str(model_cls))
    if attn == "xformers" and not getattr(model_cls, "_supports_attention_backend", False):
        attn = "sdpa"
        LOG.warning("%s cannot use the xformers backend; using sdpa", name)
    if attn == "sdpa" and not getattr(model_cls, "_supports_sdpa", True):
        LOG.info("%s has no sdpa attention; using eager", name)
        return "eager"
    return attn


def register_xformers() -> None:
    """Make ``attn_implementation="xformers"`` known to transformers (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register("xformers", xformers_attention_forward)
    AttentionMaskInterface.register("xformers", sdpa_mask)
    _registered = True


def _aligned_bias(bias: torch.Tensor) -> torch.Tensor:
    """xformers wants the bias's last dimension in memory padded to a multiple of 8."""
    *lead, kv = bias.shape
    padded = bias.new_empty(*lead, kv + (-kv) % 8)
    padded[..., :kv] = bias
    return padded[..., :kv]


def xformers_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Same inputs and output layout as transformers' sdpa function: query, key
    and value (B, H, T, D); returns (B, T, H, D)."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if not _on_gpu(query):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    from xformers.ops import fmha, memory_efficient_attention

    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))  # xformers layout: (B, T, H, D)
    batch, q_len, heads, _ = q.shape
    kv_len = k.shape[1]
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    bias: Any = None
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :kv_len]
        if mask.dtype == torch.bool:
            additive = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            mask = additive.masked_fill(~mask, torch.finfo(q.dtype).min)
        bias = _aligned_bias(mask.to(q.dtype).expand(batch, heads, q_len, kv_len))
    elif causal and q_len > 1:
        # Without a mask the sdpa mask builder meant plain causal attention, aligned
        # to the end of the keys when a cache holds earlier tokens.
        bias = fmha.attn_bias.LowerTriangularFromBottomRightMask()
    out = memory_efficient_attention(q.contiguous(), k.contiguous(), v.contiguous(),
                                     attn_bias=bias, p=dropout, scale=scaling)
    return out, None
