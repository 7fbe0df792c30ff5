import pytest
from omegaconf import OmegaConf

from mpm_framework.config.loading import resolve_config, save_config
from mpm_framework.errors import ConfigError, UnknownComponentError


def test_layer_order_defaults_recipe_cli(tiny_components, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  llm: {name: tiny-llm, hidden_size: 48}\nrun:\n  lr: 0.01\n  max_steps: 7\n")
    cfg = resolve_config(vision="tiny-vision", recipe=recipe, overrides=["run.lr=0.5", "model.llm.num_layers=3"])
    assert cfg.run.lr == 0.5  # CLI beats recipe
    assert cfg.run.max_steps == 7  # recipe beats default
    assert cfg.model.llm.hidden_size == 48
    assert cfg.model.llm.num_layers == 3
    assert cfg.model.llm.num_heads == 4  # component default
    assert cfg.run.batch_size == 8  # run default
    assert cfg.model.connector.name == "mlp2x_gelu"  # default connector with a vision encoder


def test_cli_flag_beats_recipe_component(tiny_components, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  llm: tiny-llm\n  vision: tiny-vision\n  connector: linear\n")
    cfg = resolve_config(recipe=recipe, connector="resampler")
    assert cfg.model.connector.name == "resampler"
    assert "num_queries" in cfg.model.connector


def test_typo_in_key_names_path_and_suggestion(tiny_components):
    with pytest.raises(ConfigError) as err:
        resolve_config(llm="tiny-llm", overrides=["run.lrr=1"])
    assert "unknown config key 'run.lrr'" in str(err.value)
    assert "Did you mean 'run.lr'?" in str(err.value)
    with pytest.raises(ConfigError, match=r"Did you mean .model\.llm\.hidden_size."):
        resolve_config(llm="tiny-llm", overrides=["model.llm.hiden_size=3"])
    with pytest.raises(ConfigError, match="Did you mean 'run'"):
        resolve_config(llm="tiny-llm", recipe={"rnu": {"lr": 1}})


def test_typo_in_list_of_dataclasses(tiny_components):
    with pytest.raises(ConfigError, match=r"data.train\[0\].formt"):
        resolve_config(llm="tiny-llm", recipe={"data": {"train": [{"path": "x.jsonl", "formt": "jsonl"}]}})


def test_wrong_type_is_a_clear_error(tiny_components):
    with pytest.raises(ConfigError, match="max_steps"):
        resolve_config(llm="tiny-llm", overrides=["run.max_steps=lots"])


def test_unknown_component_name(tiny_components):
    with pytest.raises(UnknownComponentError, match="Did you mean 'tiny-llm'"):
        resolve_config(llm="tiny-lm")


def test_languages_always_include_the_pivot(tiny_components):
    cfg = resolve_config(llm="tiny-llm", lang=["english"])
    assert list(cfg.model.languages) == ["en"]


def test_resolved_config_round_trips(tiny_components, tmp_path):
    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision", overrides=["run.seed=3"])
    save_config(cfg, tmp_path / "config.yaml")
    again = resolve_config(recipe=tmp_path / "config.yaml")
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)


def test_encoder_with_its_own_bridge_defaults_to_identity(mpm_plugin, tiny_components):
    import types

    from mpm_framework.hookspecs import hookimpl

    module = types.ModuleType("bridge_plugin")

    @hookimpl
    def mpm_register_vision_encoders(register):
        register("bridged", "mpm_framework.testing:TinyVision", config="mpm_framework.testing:TinyVisionConfig",
                 default_connector="identity")

    module.mpm_register_vision_encoders = mpm_register_vision_encoders
    mpm_plugin(module, name="bridge-plugin")
    assert resolve_config(llm="tiny-llm", vision="bridged").model.connector.name == "identity"
    assert resolve_config(llm="tiny-llm", vision="bridged", connector="linear").model.connector.name == "linear"
    assert resolve_config(llm="tiny-llm", vision="tiny-vision").model.connector.name == "mlp2x_gelu"
