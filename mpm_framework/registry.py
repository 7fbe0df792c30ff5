"""Named components, looked up by name or alias, built from import strings.

Nothing here imports a component's code: factories and config classes are
``"module:attr"`` strings resolved only when a stack is built, which keeps
``mpm --help`` and ``mpm plugins list`` free of torch.

Two plugins claiming one name do not break the registry: the first
registration is kept and the clash is recorded as a :class:`Conflict`; only
looking the clashing name up (composing it) is an error.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, DuplicateComponentError, MPMError, UnknownComponentError, did_you_mean

# kind -> the hook that registers it. Stack components, language packs, and what
# else a plugin names by "module:attr" strings (toy-world grammars, checkpoint
# formats): one registry, so discovery, broken-plugin isolation, name clashes and
# `mpm plugins list` work the same for every kind.
KINDS: dict[str, str] = {
    "llm": "mpm_register_llms",
    "vision": "mpm_register_vision_encoders",
    "connector": "mpm_register_connectors",
    "decoder": "mpm_register_image_decoders",
    "language": "mpm_register_languages",
    "toy_grammar": "mpm_register_toy_grammars",  # name: a language code; factory(pack) -> ToyGrammar
    "format": "mpm_register_formats",  # no factory: importer and/or exporter strings
}


def split_import_string(path: str) -> tuple[str, str]:
    """``"pkg.mod:attr"`` (or ``"pkg.mod.attr"``) -> ``("pkg.mod", "attr")``."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    return module_name, attr


def import_string(path: str) -> Any:
    """Resolve ``"package.module:attr"`` (or ``"package.module.attr"``)."""
    module_name, attr = split_import_string(path)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def module_exists(module_name: str) -> bool:
    """Whether ``module_name`` can be found, without importing it or its parent
    packages (a parent's ``__init__`` may import torch): the top-level package
    is found through the import system's finders (editable installs included),
    submodules through the parent's search locations."""
    if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
        return False
    if module_name in sys.modules:
        return True
    parts = module_name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                return False
            name = ".".join(parts[: i + 1])
            parent = sys.modules.get(".".join(parts[:i]))
            if parent is not None:  # already imported: its own finder knows best
                spec = importlib.util.find_spec(name)
            else:
                spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    except (ImportError, ValueError):
        return False
    return spec is not None


class ComponentImportError(MPMError):
    """A registration's factory or config class names a module or attribute that does not exist."""


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: str
    config: str | None = None
    aliases: tuple[str, ...] = ()
    plugin: str = "?"
    description: str = ""
    default_connector: str | None = None  # vision encoders: the connector to pair with by default
    importer: str | None = None  # formats: "module:func" turning a checkpoint into a run folder
    exporter: str | None = None  # formats: "module:func" writing a run folder in the format

    def import_strings(self) -> list[tuple[str, str]]:
        """``(role, "module:attr")`` for every import string this registration names."""
        roles = (("factory", self.factory), ("config", self.config), ("importer", self.importer),
                 ("exporter", self.exporter))
        return [(role, path) for role, path in roles if path]

    def load_factory(self) -> Any:
        return self._load(self.factory, "factory")

    def load_config_class(self) -> type | None:
        return self._load(self.config, "config") if self.config else None

    def _load(self, path: str, what: str) -> Any:
        """Import ``path``; a module or attribute that does not exist (a plugin's
        mistake, not the user's) is a one-line error naming the plugin."""
        obj, reason = _resolve(path)
        if reason is None:
            return obj
        raise ComponentImportError(
            f"plugin '{self.plugin}' registered {self.kind} '{self.name}' with {what} '{path}', but {reason}. "
            f"Reinstall or update the plugin, or disable it with MPM_DISABLE_PLUGINS={self.plugin}"
        )

    def problems(self, deep: bool = False) -> list[str]:
        """What is wrong with the import strings: by default whether their modules
        exist (found, not imported: no torch); ``deep`` imports them and checks
        the attributes too."""
        found = []
        for what, path in self.import_strings():
            module_name, attr = split_import_string(path)
            if not module_name or not attr:
                found.append(f"{what} '{path}' is not of the form 'package.module:attribute'")
            elif not module_exists(module_name):
                found.append(f"{what} '{path}': module '{module_name}' does not exist")
            elif deep:
                try:
                    reason = _resolve(path)[1]
                except Exception as exc:  # the module exists but fails to import
                    reason = f"importing it raised {type(exc).__name__}: {exc}"
                if reason is not None:
                    found.append(f"{what} '{path}': {reason}")
        return found


def _resolve(path: str) -> tuple[Any, str | None]:
    """``(object, None)``, or ``(None, reason)`` when the named module or
    attribute does not exist; other import errors propagate."""
    module_name, attr = split_import_string(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not (module_name == missing or module_name.startswith(missing + ".")):
            raise  # the module exists but one of its own imports is missing
        return None, f"module '{missing}' does not exist"
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            return None, f"module '{module_name}' has no attribute '{attr}'"
        obj = getattr(obj, part)
    return obj, None


@dataclass(frozen=True)
class Conflict:
    """Two plugins claimed the same name; the first registration was kept."""

    kind: str
    name: str  # the clashing name or alias
    kept: Registration
    dropped: Registration

    def message(self) -> str:
        return (
            f"{self.kind} '{self.name}' is registered by two plugins: '{self.kept.plugin}' "
            f"(as '{self.kept.name}') and '{self.dropped.plugin}' (as '{self.dropped.name}'). "
            f"Uninstall one of them or disable one with MPM_DISABLE_PLUGINS={self.dropped.plugin}"
        )


@dataclass
class Registry:
    """All registered components, one namespace per kind."""

    entries: dict[str, dict[str, Registration]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    conflicts: list[Conflict] = field(default_factory=list)

    def add(self, reg: Registration) -> list[Conflict]:
        """Add ``reg`` unless its name or an alias is taken; then the first
        registration stays and the clash is recorded (and returned)."""
        if reg.kind not in KINDS:
            raise ConfigError(f"unknown component kind {reg.kind!r}.{did_you_mean(str(reg.kind), KINDS)} "
                              f"Kinds: {', '.join(KINDS)}")
        clashes = []
        for name in dict.fromkeys((reg.name, *reg.aliases)):
            taken = self._owner(reg.kind, name)
            if taken is not None:
                clashes.append(Conflict(reg.kind, name, taken, reg))
        if clashes:
            self.conflicts.extend(clashes)
            return clashes
        self.entries[reg.kind][reg.name] = reg
        for alias in reg.aliases:
            self.aliases[reg.kind][alias] = reg.name
        return []

    def conflict_for(self, kind: str, name: str) -> Conflict | None:
        """The clash that makes ``name`` ambiguous: it is a name or alias of a
        registration that was dropped because another plugin had claimed it."""
        for conflict in self.conflicts:
            if conflict.kind == kind and name in (conflict.name, conflict.dropped.name, *conflict.dropped.aliases):
                return conflict
        return None

    def _owner(self, kind: str, name: str) -> Registration | None:
        if name in self.entries[kind]:
            return self.entries[kind][name]
        target = self.aliases[kind].get(name)
        return self.entries[kind][target] if target else None

    def get(self, kind: str, name: str) -> Registration:
        conflict = self.conflict_for(kind, name)
        if conflict is not None:
            raise DuplicateComponentError(conflict.message())
        reg = self._owner(kind, name)
        if reg is not None:
            return reg
        names = sorted(self.entries[kind])
        known = names + sorted(self.aliases[kind])
        available = ", ".join(names) if names else "none installed"
        raise UnknownComponentError(
            f"unknown {kind} '{name}'.{did_you_mean(name, known)} Available: {available}."
        )

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self) -> list[Registration]:
        return [r for kind in KINDS for r in self.entries[kind].values()]
