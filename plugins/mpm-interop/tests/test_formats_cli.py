"""The formats registry and the import/export commands stay torch-free until
a converter runs; unknown formats name the nearest one."""

import subprocess
import sys

from click.testing import CliRunner

from mpm_framework.cli.main import cli


def test_help_and_registry_do_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from mpm_framework.cli.main import cli; "
            "from mpm_framework.formats import formats; "
            "assert {'viscpm', 'llava-hf'} <= set(formats()), formats(); "
            "r = CliRunner().invoke(cli, ['import', '--help']); assert r.exit_code == 0, r.output; "
            "r = CliRunner().invoke(cli, ['export', '--help']); assert r.exit_code == 0, r.output; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env_plugins = "mpm_interop.plugin"
    import os

    env = {**os.environ, "MPM_PLUGINS": env_plugins}
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert check.returncode == 0, check.stderr


def test_unknown_and_one_way_formats(interop, tmp_path):
    (tmp_path / "x").mkdir()
    typo = CliRunner().invoke(cli, ["export", str(tmp_path / "x"), "--format", "lava-hf", "--out", str(tmp_path / "o")])
    assert typo.exit_code != 0 and "llava-hf" in typo.output
    one_way = CliRunner().invoke(cli, ["export", str(tmp_path / "x"), "--format", "viscpm", "--out", str(tmp_path / "o")])
    assert one_way.exit_code != 0 and "cannot export" in one_way.output
    bad_option = CliRunner().invoke(cli, ["import", "viscpm", str(tmp_path / "x"), "--out", str(tmp_path / "o"),
                                          "-o", "novalue"])
    assert bad_option.exit_code != 0 and "key=value" in bad_option.output
