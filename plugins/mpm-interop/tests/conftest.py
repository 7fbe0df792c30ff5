"""Fixtures for the interop tests: the plugins they convert for, registered
whether or not their distributions are installed."""

import pytest

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401  (fixtures)

PLUGINS = {
    "mpm_interop": "mpm_interop.plugin",
    "mpm_llm_cpm_bee": "mpm_llm_cpm_bee.plugin",
    "mpm_vision_beit3": "mpm_vision_beit3.plugin",
    "mpm_paint_unet": "mpm_paint_unet.plugin",
    "mpm_llm_llama": "mpm_llm_llama.plugin",
    "mpm_vision_clip": "mpm_vision_clip.plugin",
}


@pytest.fixture
def interop(mpm_plugin):  # noqa: F811
    import importlib

    from mpm_framework.plugins import get_plugin_manager

    pm = get_plugin_manager()
    for name, module in PLUGINS.items():
        plugin = importlib.import_module(module)
        if not pm.is_registered(plugin):
            mpm_plugin(plugin, name=name)
    yield


@pytest.fixture
def vocab_file(tmp_path):
    from mpm_llm_cpm_bee.testing import write_test_vocab

    return write_test_vocab(tmp_path / "bee.txt")
