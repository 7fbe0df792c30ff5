"""Checkpoint formats for ``mpm import`` / ``mpm export``, registered by plugins
through the ``mpm_register_formats`` hook (torch-free: importers and exporters
are ``"module:attr"`` strings resolved when a command runs).

Kept beside the component registry rather than inside it: a format is not a
stack component and has no config schema.
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


def formats() -> dict[str, Format]:
    """Every registered format by name (aliases included). A plugin whose hook
    raises contributes nothing; a name registered twice is an error naming both."""
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    hook = getattr(pm.hook, "mpm_register_formats", None)
    found: dict[str, Format] = {}
    if hook is None:
        return found
    for impl in hook.get_hookimpls():
        made: list[Format] = []

        def register(name: str, importer: str | None = None, exporter: str | None = None, *,
                     description: str = "", aliases: tuple[str, ...] | list[str] = (),
                     _made: list[Format] = made, _plugin: str = impl.plugin_name) -> None:
            if not name or not (importer or exporter):
                raise TypeError("register() needs a name and an importer or an exporter string")
            _made.append(Format(name, importer, exporter, description, tuple(aliases), _plugin))

        try:
            impl.function(register=register)
        except Exception:  # a broken plugin never takes the CLI down; `mpm plugins` reports it
            continue
        for fmt in made:
            for key in (fmt.name, *fmt.aliases):
                if key in found and found[key].plugin != fmt.plugin:
                    raise DuplicateComponentError(
                        f"format '{key}' is registered by plugin '{found[key].plugin}' and by '{fmt.plugin}'")
                found[key] = fmt
    return found


def get_format(name: str, direction: str) -> Format:
    """The format ``name`` that supports ``direction`` ("import" or "export")."""
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
