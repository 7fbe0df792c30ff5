"""Toy grammars, checkpoint formats and commands are registry kinds like the
components: ``mpm plugins list`` shows them, and one broken or clashing plugin
is handled the same way for every kind."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from mpm_framework.cli.main import cli
from mpm_framework.errors import DuplicateComponentError
from mpm_framework.formats import formats, get_format
from mpm_framework.hookspecs import hookimpl
from mpm_framework.text.toy_grammars import registered_grammars, toy_grammar


class _Everything:
    @hookimpl
    def mpm_register_toy_grammars(self, register):
        register("xx", "mpm_test_kinds.grammar:Grammar", aliases=["xx-test"])

    @hookimpl
    def mpm_register_formats(self, register):
        register("xx-format", importer="mpm_test_kinds.convert:import_it", description="a test format")

    @hookimpl
    def mpm_register_commands(self, cli):
        cli.add_command(click.Command("xx-hello", callback=lambda: None))


class _SameFormat:
    @hookimpl
    def mpm_register_formats(self, register):
        register("xx-format", exporter="elsewhere:export_it")


class _BrokenFormat:
    @hookimpl
    def mpm_register_formats(self, register):
        raise RuntimeError("format hook broken on purpose")

    @hookimpl
    def mpm_register_connectors(self, register):
        register("xx-conn", "mpm_framework.connectors.modules:MLPConnector")


def _listing() -> dict:
    result = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_plugins_list_shows_grammars_formats_and_commands(mpm_plugin):
    mpm_plugin(_Everything(), name="mpm-test-kinds")
    row = next(r for r in _listing()["plugins"] if r["plugin"] == "mpm-test-kinds")
    assert {(c["kind"], c["name"]) for c in row["components"]} == {("toy_grammar", "xx"), ("format", "xx-format")}
    assert row["commands"] == ["xx-hello"]
    table = CliRunner().invoke(cli, ["plugins", "list"]).output
    line = next(x for x in table.splitlines() if x.startswith("mpm-test-kinds"))
    assert "command" in line and "xx-hello" in line  # kinds sorted: command first
    assert "toy_grammar  xx" in table and "format       xx-format" in table
    # the lookups the rest of MPM uses read the same registrations
    assert registered_grammars()["xx-test"] == "mpm_test_kinds.grammar:Grammar"
    assert get_format("xx-format", "import").description == "a test format"


def test_a_missing_importer_module_is_a_registration_problem(mpm_plugin):
    mpm_plugin(_Everything(), name="mpm-test-kinds")
    problems = [p for p in _listing()["registration_problems"] if p["plugin"] == "mpm-test-kinds"]
    assert {p["kind"] for p in problems} == {"toy_grammar", "format"}
    assert any("importer 'mpm_test_kinds.convert:import_it'" in p["error"] for p in problems)


def test_a_format_two_plugins_claim_is_a_conflict_not_a_crash(mpm_plugin):
    mpm_plugin(_Everything(), name="mpm-test-kinds")
    mpm_plugin(_SameFormat(), name="mpm-test-same-format")
    conflicts = _listing()["conflicts"]
    assert [(c["kind"], c["name"], c["kept"], c["dropped"]) for c in conflicts] == \
        [("format", "xx-format", "mpm-test-kinds", "mpm-test-same-format")]
    assert "xx-format" not in formats()  # the other formats still work
    with pytest.raises(DuplicateComponentError, match="mpm-test-same-format"):
        get_format("xx-format", "import")


def test_a_broken_format_hook_drops_the_plugin_like_any_other(mpm_plugin):
    mpm_plugin(_BrokenFormat(), name="mpm-test-broken-format")
    listing = _listing()
    assert any(b["plugin"] == "mpm-test-broken-format" and b["hook"] == "mpm_register_formats"
               for b in listing["broken"])
    row = next(r for r in listing["plugins"] if r["plugin"] == "mpm-test-broken-format")
    assert row["broken"] and row["components"] == []


def test_a_toy_grammar_two_plugins_claim_is_reported_on_lookup(mpm_plugin):
    class _Other:
        @hookimpl
        def mpm_register_toy_grammars(self, register):
            register("xx", "mpm_other:Grammar")

    class _Pack:
        code = "xx"

    mpm_plugin(_Everything(), name="mpm-test-kinds")
    mpm_plugin(_Other(), name="mpm-test-other-grammar")
    assert "xx" not in registered_grammars()
    with pytest.raises(DuplicateComponentError, match="toy_grammar 'xx' is registered by two plugins"):
        toy_grammar(_Pack())
