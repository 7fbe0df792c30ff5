import types

import pytest

from mpm_framework import plugins
from mpm_framework.errors import DuplicateComponentError, UnknownComponentError
from mpm_framework.hookspecs import hookimpl


def _llm_plugin(name: str, component: str, aliases=()):
    module = types.ModuleType(name)

    @hookimpl
    def mpm_register_llms(register):
        register(component, "mpm_framework.testing:TinyLLM", aliases=list(aliases))

    module.mpm_register_llms = mpm_register_llms
    return module


def test_lookup_by_name_and_alias(tiny_components):
    registry = plugins.get_registry()
    assert registry.get("llm", "tiny-llm").name == "tiny-llm"
    assert registry.get("llm", "tiny").name == "tiny-llm"
    assert registry.get("connector", "mlp").name == "mlp2x_gelu"
    assert registry.get("llm", "tiny").plugin == "mpm-tiny-components"


def test_unknown_component_lists_available_and_suggests(tiny_components):
    with pytest.raises(UnknownComponentError) as err:
        plugins.get_registry().get("connector", "mlp2x_gleu")
    message = str(err.value)
    assert "Did you mean 'mlp2x_gelu'?" in message
    assert "identity, linear, mlp2x_gelu, resampler" in message


def test_duplicate_registration_names_both_plugins(mpm_plugin):
    mpm_plugin(_llm_plugin("first", "same-llm"), name="plugin-one")
    mpm_plugin(_llm_plugin("second", "same-llm"), name="plugin-two")
    with pytest.raises(DuplicateComponentError) as err:
        plugins.get_registry()
    assert "plugin-one" in str(err.value) and "plugin-two" in str(err.value)


def test_alias_clash_is_an_error(mpm_plugin):
    mpm_plugin(_llm_plugin("a", "alpha", aliases=["shared"]), name="plugin-a")
    mpm_plugin(_llm_plugin("b", "beta", aliases=["shared"]), name="plugin-b")
    with pytest.raises(DuplicateComponentError, match="alias 'shared'"):
        plugins.get_registry()


def test_factories_resolve_only_when_built(mpm_plugin):
    module = types.ModuleType("lazy")

    @hookimpl
    def mpm_register_llms(register):
        register("lazy-llm", "a_module_that_does_not_exist:Model")

    module.mpm_register_llms = mpm_register_llms
    mpm_plugin(module, name="lazy-plugin")
    reg = plugins.get_registry().get("llm", "lazy-llm")  # listing works
    with pytest.raises(ModuleNotFoundError):
        reg.load_factory()
