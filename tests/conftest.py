"""Shared fixtures: the tiny components and in-process plugin registration, and
one torch thread for every test."""

import pytest
import torch

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread: deterministic, contention-free CPU
    math, and a shared test machine stays responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
