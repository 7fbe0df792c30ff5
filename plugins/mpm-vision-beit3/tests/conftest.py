"""Fixtures for the BEiT-3 plugin's tests."""

import pytest
import torch

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401  (fixtures)


def tiny_config(**overrides):
    from mpm_vision_beit3.config import Beit3Config

    base = {"preset": "tiny", "num_queries": 6, "mapping_dim": 40}
    base.update(overrides)
    return Beit3Config(**base)


def build(**overrides):
    from mpm_vision_beit3.encoder import Beit3Encoder

    from mpm_framework.contracts.base import BuildContext

    return Beit3Encoder.from_config(tiny_config(**overrides), BuildContext())


def perturb(model, seed=1, scale=0.1):
    """Move every parameter off its structured init (unit LayerNorms, zero
    biases) so a swapped weight or a skipped LayerNorm shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


@pytest.fixture
def make_beit3():
    """``make_beit3(**config_overrides)`` -> a tiny Beit3Encoder."""
    return build


@pytest.fixture
def perturbed():
    return perturb


@pytest.fixture
def beit3_registered(mpm_plugin, tiny_components):  # noqa: F811
    """`beit3` in the registry whether or not entry points were loaded."""
    import mpm_vision_beit3.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_vision_beit3")
    yield
