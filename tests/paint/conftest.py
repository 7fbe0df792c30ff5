"""Paint fixtures: the tiny pivot plus the ``unet`` decoder (registered in-process
when the mpm-paint-unet distribution is not installed)."""

import pytest

pytest.importorskip("mpm_paint_unet", reason="the paint tests need plugins/mpm-paint-unet installed")

TINY_DECODER = [
    "model.decoder.image_size=16",
    "model.decoder.block_out_channels=[16,32]",
    "model.decoder.cross_attention_dim=32",
]


@pytest.fixture
def paint_components(tiny_components, mpm_plugin):
    import mpm_paint_unet.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_paint_unet")
    yield


@pytest.fixture
def make_paint_stack(paint_components):
    """``make_paint_stack("model.decoder.trainable=all", ...)``: a tiny stack."""
    from mpm_framework.composition import compose

    def make(*overrides: str, lang=None):
        return compose(llm="tiny-llm", decoder="unet", lang=lang, overrides=[*TINY_DECODER, *overrides])

    return make


@pytest.fixture
def tiny_paint_stack(make_paint_stack):
    return make_paint_stack()


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: contention-free CPU math on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
