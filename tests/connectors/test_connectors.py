"""The built-in connectors: shapes, token counts, LLaVA projector layouts, bad configs."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.connectors.config import ResamplerConfig
from mpm_framework.connectors.modules import (
    IdentityConnector,
    MLPConnector,
    ResamplerConnector,
    build_projector,
)
from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError


def test_projector_specs_follow_llava_layouts():
    # LLaVA's key names: mm_projector.0 (linear) / .0, .2 (mlp2x_gelu)
    assert [k for k in build_projector("linear", 4, 6).state_dict()] == ["0.weight", "0.bias"]
    mlp = build_projector("mlp2x_gelu", 4, 6)
    assert [k for k in mlp.state_dict()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(mlp[1], torch.nn.GELU) and len(build_projector("mlp3x_gelu", 4, 6)) == 5
    with pytest.raises(ConfigError, match="mlp2x_gelu"):
        build_projector("mlp_relu", 4, 6)


def test_mlp_connector_maps_width_and_keeps_token_count():
    connector = MLPConnector("mlp2x_gelu", 4, 6)
    x = torch.randn(2, 5, 4)
    out = connector(x)
    assert out.shape == (2, 5, 6) and connector.num_output_tokens(5) == 5
    torch.testing.assert_close(out, connector.proj[2](torch.nn.functional.gelu(connector.proj[0](x))))


def test_identity_needs_equal_widths():
    x = torch.randn(1, 3, 8)
    assert IdentityConnector.from_config(None, BuildContext(llm_hidden_size=8, vision_hidden_size=8))(x) is x
    with pytest.raises(ConfigError, match="mlp2x_gelu"):
        IdentityConnector.from_config(None, BuildContext(llm_hidden_size=8, vision_hidden_size=4))
    with pytest.raises(ConfigError, match="vision_hidden_size and llm_hidden_size"):
        IdentityConnector.from_config(None, BuildContext(llm_hidden_size=8))


def test_resampler_returns_its_query_count_whatever_the_input():
    torch.manual_seed(0)
    cfg = ResamplerConfig(num_queries=3, num_heads=2, num_layers=1)
    connector = ResamplerConnector.from_config(cfg, BuildContext(llm_hidden_size=8, vision_hidden_size=4))
    for tokens in (5, 17):
        assert connector(torch.randn(2, tokens, 4)).shape == (2, 3, 8)
    assert connector.num_output_tokens(17) == 3
    # each image's queries attend to that image only
    a, b = torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    torch.testing.assert_close(connector(torch.cat([a, b]))[0], connector(a)[0])
    with pytest.raises(ConfigError, match="num_heads"):
        ResamplerConnector.from_config(ResamplerConfig(num_heads=3), BuildContext(llm_hidden_size=8,
                                                                                  vision_hidden_size=4))
