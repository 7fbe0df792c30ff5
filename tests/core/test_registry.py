import types

import pytest

from mpm_framework import plugins
from mpm_framework.errors import DuplicateComponentError, MPMError, UnknownComponentError
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


def test_duplicate_keeps_the_first_and_fails_only_when_composed(mpm_plugin):
    mpm_plugin(_llm_plugin("first", "same-llm"), name="plugin-one")
    mpm_plugin(_llm_plugin("second", "same-llm"), name="plugin-two")
    mpm_plugin(_llm_plugin("third", "other-llm"), name="plugin-three")
    registry = plugins.get_registry()  # the clash does not break the registry
    assert registry.get("llm", "other-llm").plugin == "plugin-three"
    assert registry.entries["llm"]["same-llm"].plugin == "plugin-one"
    [conflict] = registry.conflicts
    assert (conflict.name, conflict.kept.plugin, conflict.dropped.plugin) == ("same-llm", "plugin-one", "plugin-two")
    with pytest.raises(DuplicateComponentError) as err:
        registry.get("llm", "same-llm")
    assert "plugin-one" in str(err.value) and "plugin-two" in str(err.value)
    assert "MPM_DISABLE_PLUGINS=plugin-two" in str(err.value)


def test_alias_clash_drops_the_later_registration(mpm_plugin):
    mpm_plugin(_llm_plugin("a", "alpha", aliases=["shared"]), name="plugin-a")
    mpm_plugin(_llm_plugin("b", "beta", aliases=["shared"]), name="plugin-b")
    registry = plugins.get_registry()
    assert registry.get("llm", "alpha").plugin == "plugin-a"
    for name in ("shared", "beta"):
        with pytest.raises(DuplicateComponentError, match="'shared' is registered by two plugins: 'plugin-a'"):
            registry.get("llm", name)


def test_a_raising_hook_drops_the_plugins_registrations(mpm_plugin):
    module = types.ModuleType("half")

    @hookimpl
    def mpm_register_llms(register):
        register("half-llm", "mpm_framework.testing:TinyLLM")

    @hookimpl
    def mpm_register_connectors(register):
        register("half-conn", "mpm_framework.connectors.modules:MLPConnector")
        raise RuntimeError("registration failed on purpose")

    module.mpm_register_llms, module.mpm_register_connectors = mpm_register_llms, mpm_register_connectors
    mpm_plugin(module, name="half-plugin")
    mpm_plugin(_llm_plugin("fine", "fine-llm"), name="fine-plugin")
    registry = plugins.get_registry()
    assert registry.get("llm", "fine-llm").plugin == "fine-plugin"
    for kind, name in (("llm", "half-llm"), ("connector", "half-conn")):
        with pytest.raises(UnknownComponentError):
            registry.get(kind, name)
    assert [(b.plugin, b.hook, b.error) for b in plugins.broken()] == [
        ("half-plugin", "mpm_register_connectors", "RuntimeError: registration failed on purpose")]


def test_factories_resolve_only_when_built(mpm_plugin):
    module = types.ModuleType("lazy")

    @hookimpl
    def mpm_register_llms(register):
        register("lazy-llm", "a_module_that_does_not_exist:Model")

    module.mpm_register_llms = mpm_register_llms
    mpm_plugin(module, name="lazy-plugin")
    reg = plugins.get_registry().get("llm", "lazy-llm")  # listing works
    assert reg.problems() == ["factory 'a_module_that_does_not_exist:Model': module "
                              "'a_module_that_does_not_exist' does not exist"]
    with pytest.raises(MPMError, match="plugin 'lazy-plugin' registered llm 'lazy-llm' with factory "
                                       "'a_module_that_does_not_exist:Model', but module "
                                       "'a_module_that_does_not_exist' does not exist"):
        reg.load_factory()


def test_module_exists_does_not_import(tmp_path, monkeypatch):
    import sys

    from mpm_framework.registry import module_exists

    pkg = tmp_path / "mpm_probe_pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module_exists("mpm_probe_pkg.sub.leaf")
    assert not module_exists("mpm_probe_pkg.sub.nothing")
    assert not module_exists("mpm_probe_pkg.nothing.leaf")
    assert not module_exists("not a module")
    assert "mpm_probe_pkg" not in sys.modules


def test_a_raising_command_hook_keeps_the_cli(mpm_plugin):
    import click

    module = types.ModuleType("bad_commands")

    @hookimpl
    def mpm_register_commands(cli):
        cli.add_command(click.Command("half-added"))
        raise ValueError("command hook failed on purpose")

    module.mpm_register_commands = mpm_register_commands
    mpm_plugin(module, name="bad-commands")
    group = click.Group("mpm", commands={"kept": click.Command("kept")})
    plugins.register_commands(group)
    assert "kept" in group.commands and "half-added" not in group.commands  # taken back
    assert ("bad-commands", "mpm_register_commands", "ValueError: command hook failed on purpose") in [
        (b.plugin, b.hook, b.error) for b in plugins.broken()]
