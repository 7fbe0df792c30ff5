"""Named components, looked up by name or alias, built from import strings.

Nothing here imports a component's code: factories and config classes are
``"module:attr"`` strings resolved only when a stack is built, which keeps
``mpm --help`` and ``mpm plugins list`` free of torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import DuplicateComponentError, UnknownComponentError, did_you_mean

KINDS: dict[str, str] = {
    "llm": "mpm_register_llms",
    "vision": "mpm_register_vision_encoders",
    "connector": "mpm_register_connectors",
    "decoder": "mpm_register_image_decoders",
    "language": "mpm_register_languages",
}


def import_string(path: str) -> Any:
    """Resolve ``"package.module:attr"`` (or ``"package.module.attr"``)."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


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

    def load_factory(self) -> Any:
        return import_string(self.factory)

    def load_config_class(self) -> type | None:
        return import_string(self.config) if self.config else None


@dataclass
class Registry:
    """All registered components, one namespace per kind."""

    entries: dict[str, dict[str, Registration]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def add(self, reg: Registration) -> None:
        if reg.kind not in KINDS:
            raise ValueError(f"unknown component kind {reg.kind!r}; kinds: {', '.join(KINDS)}")
        taken = self._owner(reg.kind, reg.name)
        if taken is not None:
            raise DuplicateComponentError(
                f"{reg.kind} '{reg.name}' is registered twice: by plugin '{taken.plugin}' "
                f"and by plugin '{reg.plugin}'. Uninstall one of them or disable it."
            )
        for alias in reg.aliases:
            other = self._owner(reg.kind, alias)
            if other is not None:
                raise DuplicateComponentError(
                    f"{reg.kind} alias '{alias}' of plugin '{reg.plugin}' clashes with "
                    f"'{other.name}' of plugin '{other.plugin}'."
                )
        self.entries[reg.kind][reg.name] = reg
        for alias in reg.aliases:
            self.aliases[reg.kind][alias] = reg.name

    def _owner(self, kind: str, name: str) -> Registration | None:
        if name in self.entries[kind]:
            return self.entries[kind][name]
        target = self.aliases[kind].get(name)
        return self.entries[kind][target] if target else None

    def get(self, kind: str, name: str) -> Registration:
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
