"""Fixtures: the ``unet`` decoder registered whether or not the distribution is
installed, plus the tiny pivot LLM."""

import pytest

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401


@pytest.fixture
def paint_components(tiny_components, mpm_plugin):  # noqa: F811
    import mpm_paint_unet.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_paint_unet")
    yield


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: contention-free CPU math on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
