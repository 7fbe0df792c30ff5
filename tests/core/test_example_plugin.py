"""The third-party plugin template installs into a real venv, composes, uninstalls."""

import json
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mpm-vision-example"


def _site_dirs() -> list[str]:
    """The site-packages of the interpreter running the tests: the system's, or
    the virtual environment's when pytest runs inside one."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    path = tmp_path_factory.mktemp("venv")
    # A fresh venv that sees this interpreter's packages (torch, the framework)
    # without downloading anything. `--system-site-packages` is not enough: inside
    # a venv it exposes the *base* interpreter's packages, not the venv's. A .pth
    # file adds this interpreter's site dirs with site.addsitedir, so the .pth
    # files of editable installs in them are processed too.
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    purelib = subprocess.run([str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs())
    (Path(purelib) / "_mpm_parent_site.pth").write_text(lines, encoding="utf-8")
    return path


def _mpm(venv, *args):
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "mpm_framework.cli.main", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def _pip(venv, *args):
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "-q", *args], timeout=300,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


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
