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


@pytest.fixture
def broken_site(tmp_path):
    """Three broken plugins next to a good one, installed as real entry points."""
    _write_dist(tmp_path, "mpm_good_plugin", """
        from mpm_framework import hookimpl

        @hookimpl
        def mpm_register_connectors(register):
            register("good-conn", "mpm_framework.connectors.modules:MLPConnector")
    """)
    _write_dist(tmp_path, "mpm_hook_raises", """
        from mpm_framework import hookimpl

        @hookimpl
        def mpm_register_connectors(register):
            register("raiser-conn", "mpm_framework.connectors.modules:MLPConnector")

        @hookimpl
        def mpm_register_vision_encoders(register):
            register("raiser-vision", "mpm_framework.testing:TinyVision")
            raise RuntimeError("registration failed on purpose")
    """)
    _write_dist(tmp_path, "mpm_dup_plugin", """
        from mpm_framework import hookimpl

        @hookimpl
        def mpm_register_connectors(register):
            register("mlp2x_gelu", "mpm_framework.connectors.modules:MLPConnector")  # the built-in's name
            register("dup-only-conn", "mpm_framework.connectors.modules:MLPConnector")
    """)
    _write_dist(tmp_path, "mpm_bad_factory", """
        from mpm_framework import hookimpl

        @hookimpl
        def mpm_register_llms(register):
            register("ghost-llm", "mpm_no_such_module.model:Ghost", config="mpm_no_such_module.config:GhostConfig")

        @hookimpl
        def mpm_register_vision_encoders(register):
            register("attr-ghost", "mpm_framework.testing:NoSuchClass")
    """)
    return tmp_path


def _no_traceback(result):
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def test_three_broken_plugins_are_reported_not_fatal(broken_site):
    result = _run_cli(broken_site, "plugins", "list")
    assert result.returncode == 0, result.stderr
    _no_traceback(result)
    assert "good-conn" in result.stdout and "dup-only-conn" in result.stdout
    assert "mpm_hook_raises (broken)" in result.stdout
    assert "raiser-conn" not in result.stdout and "raiser-vision" not in result.stdout  # all its registrations dropped
    assert ("plugin 'mpm_hook_raises' is broken: its hook mpm_register_vision_encoders raised "
            "RuntimeError: registration failed on purpose") in result.stderr
    assert ("connector 'mlp2x_gelu' is registered by two plugins: 'mpm-connectors' (as 'mlp2x_gelu') "
            "and 'mpm_dup_plugin' (as 'mlp2x_gelu')") in result.stderr
    assert ("llm 'ghost-llm': factory 'mpm_no_such_module.model:Ghost': module 'mpm_no_such_module.model' "
            "does not exist") in result.stderr
    assert "NoSuchClass" not in result.stderr  # attributes are checked only with --check (imports)


def test_broken_plugins_in_json_without_importing_torch(broken_site):
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from mpm_framework.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['plugins', 'list', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'report': json.loads(r.stdout)}))\n"
    )
    import json
    import os

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(broken_site)))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    report = out["report"]
    assert report["broken"] == [{"plugin": "mpm_hook_raises", "hook": "mpm_register_vision_encoders",
                                 "error": "RuntimeError: registration failed on purpose"}]
    row = next(p for p in report["plugins"] if p["plugin"] == "mpm_hook_raises")
    assert row["broken"] and row["components"] == []
    [conflict] = report["conflicts"]
    assert (conflict["kind"], conflict["name"], conflict["kept"], conflict["dropped"]) == \
        ("connector", "mlp2x_gelu", "mpm-connectors", "mpm_dup_plugin")
    problems = {(p["plugin"], p["name"], p["error"]) for p in report["registration_problems"]}
    assert problems == {
        ("mpm_bad_factory", "ghost-llm", "factory 'mpm_no_such_module.model:Ghost': module "
                                         "'mpm_no_such_module.model' does not exist"),
        ("mpm_bad_factory", "ghost-llm", "config 'mpm_no_such_module.config:GhostConfig': module "
                                         "'mpm_no_such_module.config' does not exist"),
    }


def test_check_imports_factories_and_fails(broken_site):
    result = _run_cli(broken_site, "plugins", "list", "--check")
    assert result.returncode == 1
    _no_traceback(result)
    assert ("vision 'attr-ghost': factory 'mpm_framework.testing:NoSuchClass': module "
            "'mpm_framework.testing' has no attribute 'NoSuchClass'") in result.stderr


def test_conflict_is_fatal_only_for_the_composed_name(broken_site):
    env = {"MPM_PLUGINS": "mpm_framework.testing_plugin"}
    ok = _run_cli(broken_site, "compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "--connector", "linear",
                  "show-config", env_extra=env)
    assert ok.returncode == 0, ok.stderr
    assert "name: linear" in ok.stdout
    clash = _run_cli(broken_site, "compose", "--llm", "tiny-llm", "--vision", "tiny-vision",
                     "--connector", "mlp2x_gelu", "show-config", env_extra=env)
    assert clash.returncode == 1
    _no_traceback(clash)
    assert ("Error: connector 'mlp2x_gelu' is registered by two plugins: 'mpm-connectors' (as 'mlp2x_gelu') and "
            "'mpm_dup_plugin' (as 'mlp2x_gelu'). Uninstall one of them or disable one with "
            "MPM_DISABLE_PLUGINS=mpm_dup_plugin") in clash.stderr
    ghost = _run_cli(broken_site, "compose", "--llm", "ghost-llm", "show-config", env_extra=env)
    assert ghost.returncode == 1
    _no_traceback(ghost)
    assert ("plugin 'mpm_bad_factory' registered llm 'ghost-llm' with config "
            "'mpm_no_such_module.config:GhostConfig', but module 'mpm_no_such_module' does not exist") in ghost.stderr


def test_disable_single_plugins(broken_site):
    import json

    env = {"MPM_DISABLE_PLUGINS": "mpm_hook_raises, mpm-dup-plugin,mpm_bad_factory,not-installed"}
    result = _run_cli(broken_site, "plugins", "list", "--json", env_extra=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["broken"] == [] and report["conflicts"] == [] and report["registration_problems"] == []
    listed = {p["plugin"] for p in report["plugins"]}
    assert "mpm_good_plugin" in listed and not listed & {"mpm_hook_raises", "mpm_dup_plugin", "mpm_bad_factory"}
    assert {d["name"]: d["matched"] for d in report["disabled"]} == {
        "mpm_hook_raises": True, "mpm-dup-plugin": True, "mpm_bad_factory": True, "not-installed": False}
    composed = _run_cli(broken_site, "compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "show-config",
                        env_extra={**env, "MPM_PLUGINS": "mpm_framework.testing_plugin"})
    assert composed.returncode == 0, composed.stderr
    assert "name: mlp2x_gelu" in composed.stdout
