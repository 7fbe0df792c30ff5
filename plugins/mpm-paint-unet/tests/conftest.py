"""Fixtures: the ``unet`` decoder registered whether or not the distribution is
installed, plus the tiny pivot LLM."""

import pytest

from mpm_framework.testing import mpm_plugin, one_thread, tiny_components  # noqa: F401  (fixtures; one_thread is autouse)


@pytest.fixture
def paint_components(tiny_components, mpm_plugin):  # noqa: F811
    import mpm_paint_unet.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_paint_unet")
    yield

