"""Connector modules."""

from __future__ import annotations

import re

import torch
from torch import nn

from ..contracts.base import BuildContext
from ..contracts.connector import Connector
from ..errors import ConfigError
from .config import IdentityConfig, LinearConfig, MLPConfig, ResamplerConfig

_SPEC = re.compile(r"^(?:linear|mlp(\d+)x_gelu)$")


def _dims(context: BuildContext) -> tuple[int, int]:
    if context.vision_hidden_size is None or context.llm_hidden_size is None:
        raise ConfigError("a connector is built between a vision encoder and an LLM: pass a BuildContext with "
                          "both vision_hidden_size and llm_hidden_size (compose() fills them in)")
    return context.vision_hidden_size, context.llm_hidden_size


class IdentityConnector(Connector):
    @classmethod
    def from_config(cls, config: IdentityConfig, context: BuildContext) -> IdentityConnector:
        vision_dim, llm_dim = _dims(context)
        if vision_dim != llm_dim:
            raise ConfigError(
                f"connector 'identity' needs the encoder to output the LLM width "
                f"({llm_dim}) but it outputs {vision_dim}; use 'mlp2x_gelu' or 'linear'."
            )
        return cls()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def build_projector(spec: str, in_dim: int, out_dim: int) -> nn.Sequential:
    """LLaVA projector spec strings: ``linear`` or ``mlp{N}x_gelu``."""
    match = _SPEC.match(spec)
    if match is None:
        raise ConfigError(f"unknown projector spec {spec!r}; use 'linear' or 'mlp2x_gelu' (mlpNx_gelu)")
    depth = int(match.group(1) or 1)
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    for _ in range(depth - 1):
        layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
    return nn.Sequential(*layers)


class MLPConnector(Connector):
    def __init__(self, spec: str, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.proj = build_projector(spec, vision_dim, llm_dim)

    @classmethod
    def from_config(cls, config: LinearConfig | MLPConfig, context: BuildContext) -> MLPConnector:
        return cls(config.projector, *_dims(context))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


class ResamplerConnector(Connector):
    """A fixed number of learned queries cross-attend to the vision tokens."""

    def __init__(self, vision_dim: int, llm_dim: int, num_queries: int, num_heads: int, num_layers: int):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, llm_dim) * 0.02)
        self.kv_proj = nn.Linear(vision_dim, llm_dim)
        self.layers = nn.ModuleList(
            nn.MultiheadAttention(llm_dim, num_heads, batch_first=True) for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(llm_dim) for _ in range(num_layers))
        self.out_norm = nn.LayerNorm(llm_dim)

    @classmethod
    def from_config(cls, config: ResamplerConfig, context: BuildContext) -> ResamplerConnector:
        vision_dim, llm_dim = _dims(context)
        if llm_dim % config.num_heads:
            raise ConfigError(f"resampler num_heads={config.num_heads} must divide the LLM width {llm_dim}")
        return cls(vision_dim, llm_dim, config.num_queries, config.num_heads, config.num_layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        kv = self.kv_proj(features)
        x = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)
        for attn, norm in zip(self.layers, self.norms, strict=True):
            x = x + attn(norm(x), kv, kv, need_weights=False)[0]
        return self.out_norm(x)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return self.queries.shape[0]
