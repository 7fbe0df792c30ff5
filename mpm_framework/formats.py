"""Checkpoint formats for ``mpm import`` / ``mpm export``, registered by plugins
through the ``mpm_register_formats`` hook (torch-free: importers and exporters
are ``"module:attr"`` strings resolved when a command runs).

Formats are the ``"format"`` kind of the plugin registry (``mpm_framework.registry``),
so a broken plugin, a name two plugins claim and ``mpm plugins list`` are handled
as for every other kind; this module turns those registrations into
:class:`Format` objects that run the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, DuplicateComponentError, did_you_mean
from .registry import import_string


@dataclass(frozen=True)
class Format:
    """One registered format: what can be imported from it and exported to it."""

    name: str
    importer: str | None = None
    exporter: str | None = None
    description: str = ""
    aliases: tuple[str, ...] = ()
    plugin: str = "?"

    def run_import(self, path: str | Path, out: str | Path, **options: Any) -> Path:
        if not self.importer:
            raise ConfigError(f"format '{self.name}' cannot be imported (export only)")
        return import_string(self.importer)(Path(path), Path(out), **options)

    def run_export(self, run_dir: str | Path, out: str | Path, **options: Any) -> Path:
        if not self.exporter:
            raise ConfigError(f"format '{self.name}' cannot be exported to (import only)")
        return import_string(self.exporter)(Path(run_dir), Path(out), **options)


def _from_registration(reg: Any) -> Format:
    return Format(reg.name, reg.importer, reg.exporter, reg.description, reg.aliases, reg.plugin)


def formats() -> dict[str, Format]:
    """Every registered format by name (aliases included). A plugin whose hook
    raises contributes nothing; a name two plugins claim is left out (looking
    it up with :func:`get_format` is an error naming both)."""
    from .plugins import get_registry

    registry = get_registry()
    found: dict[str, Format] = {}
    for reg in registry.entries["format"].values():
        for key in (reg.name, *reg.aliases):
            if registry.conflict_for("format", key) is None:
                found[key] = _from_registration(reg)
    return found


def get_format(name: str, direction: str) -> Format:
    """The format ``name`` that supports ``direction`` ("import" or "export")."""
    from .plugins import get_registry

    conflict = get_registry().conflict_for("format", name)
    if conflict is not None:
        raise DuplicateComponentError(conflict.message())
    known = formats()
    usable = sorted({f.name for f in known.values() if (f.importer if direction == "import" else f.exporter)})
    if name not in known:
        listing = ", ".join(usable) or "none installed (pip install mpm-interop)"
        raise ConfigError(f"unknown format '{name}'.{did_you_mean(name, list(known))} "
                          f"Formats that can {direction}: {listing}")
    fmt = known[name]
    if (fmt.importer if direction == "import" else fmt.exporter) is None:
        raise ConfigError(f"format '{fmt.name}' cannot {direction}. Formats that can: {', '.join(usable)}")
    return fmt
