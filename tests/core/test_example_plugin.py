"""The third-party plugin template installs into a real venv, composes, uninstalls."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mpm-vision-example"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    path = tmp_path_factory.mktemp("venv")
    # System site-packages bring torch and the framework without downloading anything.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], check=True)
    return path


def _mpm(venv, *args):
    return subprocess.run([str(venv / "bin" / "python"), "-m", "mpm_framework.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


def _pip(venv, *args):
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "-q", *args], check=True, timeout=300,
                   capture_output=True)


def test_template_plugin_install_compose_uninstall(venv):
    _pip(venv, "install", "--no-build-isolation", "--no-deps", str(EXAMPLE))
    listed = json.loads(_mpm(venv, "plugins", "list", "--json").stdout)
    plugin = next(p for p in listed["plugins"] if p["plugin"] == "mpm_vision_example")
    assert plugin["distribution"] == "mpm-vision-example" and plugin["version"] == "0.1.0"
    assert plugin["components"] == [{"kind": "vision", "name": "conv-example", "aliases": ["conv"]}]

    code = (
        "import os, torch\n"
        "os.environ['MPM_PLUGINS'] = 'mpm_framework.testing_plugin'\n"
        "from mpm_framework import compose\n"
        "s = compose(llm='tiny-llm', vision='conv', connector='linear')\n"
        "f = s.encode_images(torch.randn(2, 3, 32, 32))\n"
        "print('SHAPE', tuple(f.shape))\n"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "SHAPE (2, 16, 32)" in out.stdout

    _pip(venv, "uninstall", "-y", "mpm-vision-example")
    listed = json.loads(_mpm(venv, "plugins", "list", "--json").stdout)
    assert all(p["plugin"] != "mpm_vision_example" for p in listed["plugins"])
