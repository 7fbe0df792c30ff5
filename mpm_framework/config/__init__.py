"""Layered, validated configuration (omegaconf)."""

from .loading import resolve_config, to_yaml

__all__ = ["resolve_config", "to_yaml"]
