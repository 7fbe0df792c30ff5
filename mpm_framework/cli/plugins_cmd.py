"""``mpm plugins``: what is installed."""

from __future__ import annotations

import json

import click


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_plugins(as_json: bool) -> None:
    """List plugins with their version and the components they register."""
    from .. import plugins as mpm_plugins

    registry_by_plugin = mpm_plugins.components_by_plugin()
    rows = []
    for name, info in mpm_plugins.INFO.items():
        comps = registry_by_plugin.get(name, [])
        rows.append({
            "plugin": name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "components": [{"kind": r.kind, "name": r.name, "aliases": list(r.aliases)} for r in comps],
        })
    failed = [{"plugin": f.name, "distribution": f.distribution, "error": f.reason} for f in mpm_plugins.FAILED]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "failed": failed}, indent=2, ensure_ascii=False))
        return
    header = f"{'plugin':<30} {'version':<10} {'kind':<10} components"
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        by_kind: dict[str, list[str]] = {}
        for comp in row["components"]:
            by_kind.setdefault(comp["kind"], []).append(comp["name"])
        kinds = sorted(by_kind) or ["-"]
        for i, kind in enumerate(kinds):
            plugin_col = row["plugin"] + (" (built-in)" if row["builtin"] and i == 0 else "") if i == 0 else ""
            click.echo(f"{plugin_col:<30} {row['version'] if i == 0 else '':<10} {kind:<10} "
                       f"{', '.join(by_kind.get(kind, []))}")
    for f in failed:
        click.secho(f"! plugin '{f['plugin']}' ({f['distribution']}) failed to load: {f['error']}",
                    fg="yellow", err=True)
