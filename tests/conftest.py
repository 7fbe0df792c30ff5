"""Shared fixtures: the tiny components and in-process plugin registration."""

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401
