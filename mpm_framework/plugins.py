"""Plugin discovery: built-in default plugins plus the ``mpm`` entry-point group.

One broken package never takes the CLI down:

* a plugin whose import raises is recorded in :data:`FAILED` and skipped;
* a plugin whose registration hook raises is recorded as broken (plugin, hook,
  error, see :func:`broken`) and every registration it made is dropped;
* a name claimed by two plugins keeps the first registration; the clash is
  recorded in the registry and is an error only for a command that composes
  that name;
* ``MPM_DISABLE_PLUGINS=name,...`` skips single plugins (by plugin or
  distribution name), ``MPM_DISABLE_PLUGIN_AUTOLOAD=1`` every installed one.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import KINDS, Registration, Registry

ENTRY_POINT_GROUP = "mpm"
DEFAULT_PLUGINS = {
    "mpm-connectors": "mpm_framework.connectors.plugin",
    "mpm-lang-en": "mpm_framework.lang_en.plugin",
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool = False


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or registered."""

    name: str
    distribution: str
    reason: str


@dataclass(frozen=True)
class BrokenHook:
    """A plugin hook that raised; the plugin's registrations from it were dropped."""

    plugin: str
    hook: str
    error: str


_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
INFO: dict[str, PluginInfo] = {}
FAILED: list[PluginFailure] = []
# Hook failures: those of the registration hooks are recomputed with the registry.
_REGISTRATION_BROKEN: list[BrokenHook] = []
_COMMAND_BROKEN: list[BrokenHook] = []
DISABLED: dict[str, bool] = {}  # MPM_DISABLE_PLUGINS names -> whether one matched a plugin


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _framework_version() -> str:
    try:
        return metadata.version("mpm-framework")
    except metadata.PackageNotFoundError:
        return "dev"


def _disabled_names() -> list[str]:
    return [n.strip() for n in os.environ.get("MPM_DISABLE_PLUGINS", "").split(",") if n.strip()]


def _is_disabled(*names: str) -> bool:
    """True (and noted) when ``MPM_DISABLE_PLUGINS`` lists any of ``names``."""
    hit = [n for n in names if n in DISABLED]
    for n in hit:
        DISABLED[n] = True
    return bool(hit)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if _is_disabled(ep.name, dist):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin is reported, never fatal
            FAILED.append(PluginFailure(ep.name, dist, _one_line(exc)))
            continue
        INFO[ep.name] = PluginInfo(ep.name, dist, version)


def _load_env_plugins(pm: pluggy.PluginManager) -> None:
    """``MPM_PLUGINS=pkg.module,other.module`` registers plugin modules that are
    not installed as distributions (like pytest's ``-p``): handy for subprocess
    tests and for trying a plugin before packaging it."""
    for module_name in filter(None, (m.strip() for m in os.environ.get("MPM_PLUGINS", "").split(","))):
        if pm.get_plugin(module_name) is not None or _is_disabled(module_name):
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            FAILED.append(PluginFailure(module_name, "(MPM_PLUGINS)", _one_line(exc)))
            continue
        INFO[module_name] = PluginInfo(module_name, "(MPM_PLUGINS)", "-")


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built on first use)."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("mpm")
        pm.add_hookspecs(hookspecs)
        DISABLED.clear()
        DISABLED.update(dict.fromkeys(_disabled_names(), False))
        version = _framework_version()
        for name, module_name in DEFAULT_PLUGINS.items():
            if _is_disabled(name):
                continue
            pm.register(importlib.import_module(module_name), name=name)
            INFO[name] = PluginInfo(name, "mpm-framework", version, builtin=True)
        if not os.environ.get("MPM_DISABLE_PLUGIN_AUTOLOAD"):
            _load_entry_points(pm)
        _load_env_plugins(pm)
        _pm = pm
    return _pm


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> str:
    """Register an in-process plugin (tests, notebooks); returns its name.
    A name listed in ``MPM_DISABLE_PLUGINS`` is not registered."""
    pm = get_plugin_manager()
    if name is not None and _is_disabled(name):
        return name
    plugin_name = pm.register(plugin, name=name)
    assert plugin_name is not None
    INFO[plugin_name] = PluginInfo(plugin_name, "(in-process)", "-")
    _invalidate()
    return plugin_name


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    INFO.pop(name, None)
    _invalidate()


def _invalidate() -> None:
    global _registry
    _registry = None


def reset() -> None:
    """Forget every plugin; the next call rediscovers them (used by tests)."""
    global _pm, _registry
    _pm = None
    _registry = None
    INFO.clear()
    FAILED.clear()
    _REGISTRATION_BROKEN.clear()
    _COMMAND_BROKEN.clear()
    DISABLED.clear()


def get_registry() -> Registry:
    """Every component registered by every loaded plugin.

    Each hook implementation is called on its own (so registrations carry their
    plugin, and one that raises is isolated); a plugin with a raising hook
    contributes nothing. Registrations are then added in discovery order, so on
    a name clash the earlier plugin's registration is the one kept."""
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        registry = Registry()
        collected: list[Registration] = []
        broken: list[BrokenHook] = []
        for kind, hook_name in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if any(b.plugin == impl.plugin_name for b in broken):
                    continue
                made: list[Registration] = []
                registrar = _format_registrar if kind == "format" else _registrar
                try:
                    impl.function(register=registrar(made, kind, impl.plugin_name))
                except Exception as exc:  # a broken plugin is reported, never fatal
                    broken.append(BrokenHook(impl.plugin_name, hook_name, _one_line(exc)))
                    continue
                collected.extend(made)
        dropped = {b.plugin for b in broken}
        for reg in collected:
            if reg.plugin not in dropped:
                registry.add(reg)
        _REGISTRATION_BROKEN[:] = broken
        _registry = registry
    return _registry


def broken() -> list[BrokenHook]:
    """Plugins that failed: at import (hook ``(import)``), in a registration hook
    (their components are dropped) or in ``mpm_register_commands``."""
    get_registry()
    imports = [BrokenHook(f.name, "(import)", f.reason) for f in FAILED]
    return [*imports, *_REGISTRATION_BROKEN, *_COMMAND_BROKEN]


def register_commands(cli: Any) -> None:
    """Let every plugin add its commands to ``cli``; a plugin whose hook raises
    is reported and the commands it added before failing are taken back."""
    pm = get_plugin_manager()
    _COMMAND_BROKEN.clear()
    for impl in pm.hook.mpm_register_commands.get_hookimpls():
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            cli.commands.clear()
            cli.commands.update(before)
            _COMMAND_BROKEN.append(BrokenHook(impl.plugin_name, "mpm_register_commands", _one_line(exc)))


def _registrar(made: list[Registration], kind: str, plugin_name: str):
    def register(
        name: str,
        factory: str,
        *,
        config: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        description: str = "",
        default_connector: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or not isinstance(factory, str):
            raise PluginError(f"register() needs a name and a 'module:attr' factory string, got {name!r}, {factory!r}: "
                              "pass the factory as an import string, e.g. 'my_plugin.encoder:MyEncoder'")
        made.append(
            Registration(
                kind=kind,
                name=name,
                factory=factory,
                config=config,
                aliases=tuple(aliases),
                plugin=plugin_name,
                description=description,
                default_connector=default_connector,
            )
        )

    return register


def _format_registrar(made: list[Registration], kind: str, plugin_name: str):
    """``register(name, importer=..., exporter=..., description=..., aliases=...)``
    of the ``mpm_register_formats`` hook (see ``mpm_framework.formats``)."""

    def register(name: str, importer: str | None = None, exporter: str | None = None, *,
                 description: str = "", aliases: tuple[str, ...] | list[str] = ()) -> None:
        if not isinstance(name, str) or not name or not (importer or exporter):
            raise PluginError("register() needs a name and an importer or an exporter string, "
                              "e.g. register('myformat', importer='my_plugin.io:import_checkpoint')")
        made.append(Registration(kind=kind, name=name, factory="", aliases=tuple(aliases), plugin=plugin_name,
                                 description=description, importer=importer, exporter=exporter))

    return register


def plugin_commands() -> dict[str, list[str]]:
    """Plugin name -> the ``mpm`` commands its ``mpm_register_commands`` adds
    (asked on a scratch group, so this works whatever ``cli`` was built from;
    a hook that raises adds nothing here and is reported by :func:`broken`)."""
    import click

    out: dict[str, list[str]] = {}
    for impl in get_plugin_manager().hook.mpm_register_commands.get_hookimpls():
        scratch = click.Group()
        try:
            impl.function(cli=scratch)
        except Exception:
            continue
        if scratch.commands:
            out[impl.plugin_name] = sorted(scratch.commands)
    return out


def components_by_plugin() -> dict[str, list[Registration]]:
    out: dict[str, list[Registration]] = {name: [] for name in INFO}
    for reg in get_registry().all():
        out.setdefault(reg.plugin, []).append(reg)
    return out
