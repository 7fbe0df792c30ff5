"""Connector configs (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IdentityConfig:
    name: str = "identity"


@dataclass
class LinearConfig:
    name: str = "linear"
    projector: str = "linear"  # LLaVA spec string: linear | mlp{N}x_gelu


@dataclass
class MLPConfig:
    name: str = "mlp2x_gelu"
    projector: str = "mlp2x_gelu"


@dataclass
class ResamplerConfig:
    name: str = "resampler"
    num_queries: int = 32
    num_heads: int = 8
    num_layers: int = 1
