"""Discovery through real entry points: a broken plugin is isolated."""

import subprocess
import sys
import textwrap

import pytest


def _write_dist(root, name: str, plugin_source: str):
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(plugin_source))
    dist_info = root / f"{name}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[mpm]\n{name} = {name}.plugin\n")


def _run_cli(tmp_path, *args, env_extra=None):
    import os

    env = dict(os.environ, PYTHONPATH=str(tmp_path), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mpm_framework.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def plugin_site(tmp_path):
    _write_dist(tmp_path, "mpm_good_plugin", """
        from mpm_framework import hookimpl

        @hookimpl
        def mpm_register_connectors(register):
            register("good-conn", "mpm_framework.connectors.modules:MLPConnector")
    """)
    _write_dist(tmp_path, "mpm_broken_plugin", """
        raise RuntimeError("this plugin is broken on purpose")
    """)
    return tmp_path


def test_broken_plugin_is_reported_and_skipped(plugin_site):
    result = _run_cli(plugin_site, "plugins", "list")
    assert result.returncode == 0, result.stderr
    assert "good-conn" in result.stdout
    assert "mpm_broken_plugin" in result.stderr
    assert "RuntimeError: this plugin is broken on purpose" in result.stderr


def test_autoload_can_be_disabled(plugin_site):
    result = _run_cli(plugin_site, "plugins", "list", "--json", env_extra={"MPM_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stderr
    assert "good-conn" not in result.stdout
    assert "mpm-connectors" in result.stdout


def test_plugins_list_does_not_import_torch(plugin_site):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mpm_framework.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['plugins', 'list'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_env_plugins_register_modules():
    result = subprocess.run(
        [sys.executable, "-m", "mpm_framework.cli.main", "plugins", "list", "--json"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "MPM_PLUGINS": "mpm_framework.testing_plugin"},
    )
    assert result.returncode == 0, result.stderr
    assert '"tiny-llm"' in result.stdout
