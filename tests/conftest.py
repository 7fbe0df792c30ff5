"""Shared fixtures: the tiny components and in-process plugin registration, and
one torch thread for every test."""

from mpm_framework.testing import mpm_plugin, one_thread, tiny_components  # noqa: F401  (fixtures; one_thread is autouse)

