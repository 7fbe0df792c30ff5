"""Choices declared as ``Literal[...]`` in config dataclasses, and swapping a
recipe's component on the command line (issue 18, item 10)."""

import dataclasses
import warnings
from typing import Literal

import pytest
from click.testing import CliRunner
from omegaconf import OmegaConf

from mpm_framework.cli.main import cli
from mpm_framework.config.loading import ComponentSwapWarning, _check_keys, resolve_config
from mpm_framework.errors import ConfigError

TOY = "examples/recipes/toy.yaml"


def test_dtype_outside_its_choices_fails_with_allowed_values_and_nearest():
    with pytest.raises(ConfigError) as err:
        resolve_config(llm="llama", overrides=["model.llm.dtype=fp8"])
    assert "'model.llm.dtype'" in str(err.value)
    assert "Did you mean 'fp32'?" in str(err.value)
    assert "Allowed: fp32, bf16, fp16" in str(err.value)


@pytest.mark.parametrize("kind,name", [("vision", "clip"), ("vision", "beit3"), ("llm", "cpm-bee"),
                                       ("decoder", "unet")])
def test_every_plugin_dtype_is_checked(kind, name):
    with pytest.raises(ConfigError, match=f"model.{kind}.dtype.*Did you mean 'bf16'"):
        resolve_config(**{kind: name}, overrides=[f"model.{kind}.dtype=bf61"])
    assert resolve_config(**{kind: name}, overrides=[f"model.{kind}.dtype=bf16"]).model[kind].dtype == "bf16"


@pytest.mark.parametrize("kind,name", [("llm", "llama"), ("llm", "hf-causal-lm"), ("llm", "cpm-bee"),
                                       ("vision", "clip"), ("vision", "siglip"), ("vision", "beit3")])
def test_every_plugin_quantize_is_checked(kind, name):
    with pytest.raises(ConfigError, match=f"model.{kind}.quantize.*Did you mean 'int8'.*Allowed: none, int8"):
        resolve_config(**{kind: name}, overrides=[f"model.{kind}.quantize=int4"])
    assert resolve_config(**{kind: name}, overrides=[f"model.{kind}.quantize=int8"]).model[kind].quantize == "int8"


def test_literal_is_checked_by_mpm_not_left_to_omegaconf():
    """The check runs before the merge, so it holds whatever omegaconf does with Literal."""

    @dataclasses.dataclass
    class Cfg:
        mode: Literal["fast", "exact"] = "fast"
        other: str = "x"

    schema = OmegaConf.create({"model": {"llm": OmegaConf.structured(Cfg)}})
    _check_keys({"model": {"llm": {"mode": "exact", "other": "anything"}}}, schema, "")
    with pytest.raises(ConfigError, match=r"invalid value 'fats' for 'model.llm.mode'. Did you mean 'fast'\?"):
        _check_keys({"model": {"llm": {"mode": "fats"}}}, schema, "")


def test_recipe_dtype_is_checked_at_show_config():
    result = CliRunner().invoke(cli, ["compose", "--config", TOY, "model.vision.dtype=fp8", "show-config"])
    assert result.exit_code != 0
    assert "Allowed: fp32, bf16, fp16" in result.output and "Traceback" not in result.output


def test_swapping_the_recipes_component_drops_its_old_keys_by_name():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = resolve_config(recipe=TOY, vision="beit3", overrides=["model.vision.preset=tiny"])
    messages = [str(w.message) for w in caught if issubclass(w.category, ComponentSwapWarning)]
    assert len(messages) == 1
    assert "'clip'" in messages[0]
    assert "model.vision.feature_layer" in messages[0] and "model.vision.tiny" in messages[0]
    assert cfg.model.vision.name == "beit3" and cfg.model.vision.preset == "tiny"  # the CLI's own keys stay
    assert "feature_layer" not in cfg.model.vision and "tiny" not in cfg.model.vision
    assert cfg.model.llm.path == "runs/demo/seed0/pivots/mpm/model"  # other components untouched


def test_same_component_on_the_command_line_keeps_the_recipes_keys():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComponentSwapWarning)
        cfg = resolve_config(recipe=TOY, vision="clip")
    assert cfg.model.vision.feature_layer == -1 and cfg.model.vision.tiny.image_size == 64


def test_swap_on_the_cli_warns_once_and_shows_the_config():
    with pytest.warns(ComponentSwapWarning, match="model.vision.feature_layer"):
        result = CliRunner().invoke(cli, ["compose", "--config", TOY, "--vision", "beit3", "show-config"])
    assert result.exit_code == 0, result.output
    assert "name: beit3" in result.output
    assert "Did you mean" not in result.output and "feature_layer" not in result.output
