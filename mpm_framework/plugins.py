"""Plugin discovery: built-in default plugins plus the ``mpm`` entry-point group.

A plugin whose import raises is recorded in :data:`FAILED` and skipped, so one
broken package never takes the CLI down.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import pluggy

from . import hookspecs
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
    name: str
    distribution: str
    reason: str


_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
INFO: dict[str, PluginInfo] = {}
FAILED: list[PluginFailure] = []


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _framework_version() -> str:
    try:
        return metadata.version("mpm-framework")
    except metadata.PackageNotFoundError:
        return "dev"


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
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
        if pm.get_plugin(module_name) is not None:
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
        version = _framework_version()
        for name, module_name in DEFAULT_PLUGINS.items():
            pm.register(importlib.import_module(module_name), name=name)
            INFO[name] = PluginInfo(name, "mpm-framework", version, builtin=True)
        if not os.environ.get("MPM_DISABLE_PLUGIN_AUTOLOAD"):
            _load_entry_points(pm)
        _load_env_plugins(pm)
        _pm = pm
    return _pm


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> str:
    """Register an in-process plugin (tests, notebooks); returns its name."""
    pm = get_plugin_manager()
    plugin_name = pm.register(plugin, name=name)
    assert plugin_name is not None
    INFO[plugin_name] = PluginInfo(plugin_name, "(in-process)", "-")
    _invalidate()
    return plugin_name


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
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


def get_registry() -> Registry:
    """Every component registered by every loaded plugin."""
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        registry = Registry()
        for kind, hook_name in KINDS.items():
            hook = getattr(pm.hook, hook_name)
            # Call each implementation on its own so registrations carry their plugin.
            for impl in hook.get_hookimpls():
                impl.function(register=_registrar(registry, kind, impl.plugin_name))
        _registry = registry
    return _registry


def _registrar(registry: Registry, kind: str, plugin_name: str):
    def register(
        name: str,
        factory: str,
        *,
        config: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        description: str = "",
        default_connector: str | None = None,
    ) -> None:
        registry.add(
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


def components_by_plugin() -> dict[str, list[Registration]]:
    out: dict[str, list[Registration]] = {name: [] for name in INFO}
    for reg in get_registry().all():
        out.setdefault(reg.plugin, []).append(reg)
    return out
