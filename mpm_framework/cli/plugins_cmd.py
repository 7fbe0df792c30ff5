"""``mpm plugins``: what is installed, and what is wrong with it."""

from __future__ import annotations

import json
import sys

import click


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


def _report(check: bool) -> dict:
    """Everything ``plugins list`` shows, as plain data."""
    from .. import plugins as mpm_plugins

    registry = mpm_plugins.get_registry()
    registry_by_plugin = mpm_plugins.components_by_plugin()
    broken = mpm_plugins.broken()
    broken_names = {b.plugin for b in broken}
    commands = mpm_plugins.plugin_commands()
    rows = []
    for name, info in mpm_plugins.INFO.items():
        comps = registry_by_plugin.get(name, [])
        rows.append({
            "plugin": name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "broken": name in broken_names,
            "components": [{"kind": r.kind, "name": r.name, "aliases": list(r.aliases)} for r in comps],
            "commands": commands.get(name, []),
        })
    problems = [
        {"plugin": reg.plugin, "kind": reg.kind, "name": reg.name, "error": problem}
        for reg in registry.all() for problem in reg.problems(deep=check)
    ]
    return {
        "plugins": rows,
        "failed": [{"plugin": f.name, "distribution": f.distribution, "error": f.reason} for f in mpm_plugins.FAILED],
        "broken": [{"plugin": b.plugin, "hook": b.hook, "error": b.error} for b in broken],
        "conflicts": [
            {"kind": c.kind, "name": c.name, "kept": c.kept.plugin, "dropped": c.dropped.plugin,
             "message": c.message()}
            for c in registry.conflicts
        ],
        "registration_problems": problems,
        "disabled": [{"name": n, "matched": hit} for n, hit in mpm_plugins.DISABLED.items()],
    }


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True,
              help="Also import every registered factory and config class (slow: imports torch) and exit "
                   "with status 1 when any plugin is broken or any registration is wrong.")
def list_plugins(as_json: bool, check: bool) -> None:
    """List plugins with their version and what they register: components
    (llm, vision, connector, decoder), language packs, toy grammars, checkpoint
    formats and commands.

    Plugins that failed to load or whose registration hook raised are listed
    as broken (their components are dropped); names claimed twice keep the
    first plugin's registration; factories whose module does not exist are
    reported. MPM_DISABLE_PLUGINS=name,... skips single plugins.
    """
    report = _report(check)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_table(report)
    trouble = report["broken"] or report["conflicts"] or report["registration_problems"]
    if check and trouble:
        sys.exit(1)


def _print_table(report: dict) -> None:
    header = f"{'plugin':<30} {'version':<10} {'kind':<12} names"
    click.echo(header)
    click.echo("-" * len(header))
    for row in report["plugins"]:
        by_kind: dict[str, list[str]] = {}
        for comp in row["components"]:
            by_kind.setdefault(comp["kind"], []).append(comp["name"])
        if row["commands"]:
            by_kind["command"] = row["commands"]
        kinds = sorted(by_kind) or ["-"]
        for i, kind in enumerate(kinds):
            label = row["plugin"] + (" (built-in)" if row["builtin"] else "") + (" (broken)" if row["broken"] else "")
            plugin_col = label if i == 0 else ""
            click.echo(f"{plugin_col:<30} {row['version'] if i == 0 else '':<10} {kind:<12} "
                       f"{', '.join(by_kind.get(kind, []))}")
    warn = lambda text: click.secho(text, fg="yellow", err=True)  # noqa: E731
    for f in report["failed"]:
        warn(f"! plugin '{f['plugin']}' ({f['distribution']}) failed to load: {f['error']}")
    for b in report["broken"]:
        if b["hook"] != "(import)":
            warn(f"! plugin '{b['plugin']}' is broken: its hook {b['hook']} raised {b['error']}; "
                 "its registrations are dropped")
    for c in report["conflicts"]:
        warn(f"! conflict: {c['message']} (the registration of '{c['kept']}' is used)")
    for p in report["registration_problems"]:
        warn(f"! plugin '{p['plugin']}', {p['kind']} '{p['name']}': {p['error']}")
    for d in report["disabled"]:
        if d["matched"]:
            warn(f"- plugin '{d['name']}' is disabled (MPM_DISABLE_PLUGINS)")
        else:
            warn(f"! MPM_DISABLE_PLUGINS names '{d['name']}', which is not an installed plugin")
