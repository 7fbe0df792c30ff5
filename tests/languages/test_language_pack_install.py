"""Acceptance: each pack installs into a fresh environment with ``pip install
<folder>``, shows up in ``mpm plugins list``, works there, and is gone after
``pip uninstall``.

The environment is a new venv *without* the system site-packages: the packs
are usually installed system-wide already (scripts/install.sh), and a venv
that saw them would prove nothing. The few third-party modules the CLI,
pip and setuptools need are linked into it (no download); the framework is
installed into it editable; the packs are installed for real, one at a time,
each from a copy of its folder (pip builds in the source tree, and build
leftovers in the checkout would be picked up by other tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKS = {  # folder -> (distribution, entry-point name, code, aliases)
    "languages/mpm-lang-zh": ("mpm-lang-zh", "mpm_lang_zh", "zh", ["chinese", "zh-hans", "zh-cn", "中文"]),
    "languages/mpm-lang-de": ("mpm-lang-de", "mpm_lang_de", "de", ["german", "deutsch"]),
    "languages/mpm-lang-fr": ("mpm-lang-fr", "mpm_lang_fr", "fr", ["french", "français", "francais"]),
    "languages/mpm-lang-es": ("mpm-lang-es", "mpm_lang_es", "es", ["spanish", "español", "espanol"]),
}

# What must be importable in the fresh environment: the CLI and the packs'
# torch-free code, and pip/setuptools to install them.
PROBE = """
import json, sys, importlib.metadata as md
import mpm_framework.cli.main, mpm_framework.text.pack_base, mpm_framework.toyworld.scene
import setuptools, setuptools.build_meta, wheel, pip, pip._internal.cli.main
tops = {n.split('.')[0] for n in list(sys.modules)}
files = {n: getattr(sys.modules[n], '__file__', None) for n in tops if n in sys.modules}
dists = md.packages_distributions()
print(json.dumps({"files": files, "dists": {n: dists.get(n, []) for n in tops}}))
"""


def _site_packages_only(path: str | None) -> bool:
    # An installed third-party module: under a site-packages folder. That folder
    # may sit inside the checkout (CI's `.venv`); our own editable sources never do.
    return bool(path) and "site-packages" in Path(path).resolve().parts


def _link_dependencies(shim: Path) -> None:
    env = {**os.environ, "MPM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    probe = json.loads(out.stdout)
    from importlib import metadata

    for name, file in probe["files"].items():
        if name.startswith(("mpm_", "__editable__")) or not _site_packages_only(file):
            continue
        src = Path(file).parent if Path(file).name == "__init__.py" else Path(file)
        if not (shim / src.name).exists():
            (shim / src.name).symlink_to(src)
        for dist_name in probe["dists"].get(name, []):
            if dist_name.startswith("mpm-"):
                continue
            try:
                info = Path(metadata.distribution(dist_name)._path)  # the dist-info folder
            except metadata.PackageNotFoundError:  # e.g. namespace packages such as backports.*
                continue
            if not (shim / info.name).exists():
                (shim / info.name).symlink_to(info)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-env")
    path = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    shim = root / "shim"
    shim.mkdir()
    _link_dependencies(shim)
    purelib = subprocess.run([str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "mpm_test_shim.pth").write_text(str(shim) + "\n")
    # nothing of the system environment leaks in: no system site-packages, no installed pack
    system_site = sysconfig.get_path("purelib")
    check = _python(path, f"import sys, importlib.util as u; print(any(p == {system_site!r} for p in sys.path), "
                          "u.find_spec('mpm_lang_de') is None)")
    assert check.stdout.split() == ["False", "True"], check.stderr
    _pip(path, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    return path


def _python(venv: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPM_PLUGINS", "MPM_DISABLE_PLUGIN_AUTOLOAD")}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          timeout=300, env=env, cwd=venv.parent)


def _pip(venv: Path, *args: str) -> None:
    result = _python(venv, "import sys; from pip._internal.cli.main import main; sys.argv[0] = 'pip'; "
                           f"sys.exit(main({['-q', '--disable-pip-version-check', *args]!r}))")
    assert result.returncode == 0, result.stdout + result.stderr


def _mpm(venv: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPM_PLUGINS", "MPM_DISABLE_PLUGIN_AUTOLOAD")}
    result = subprocess.run([str(venv / "bin" / "mpm"), *args], capture_output=True, text=True, timeout=300,
                            env=env, cwd=venv.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _languages(venv: Path) -> dict[str, dict]:
    listed = json.loads(_mpm(venv, "plugins", "list", "--json"))
    assert listed["failed"] == []
    return {p["plugin"]: p for p in listed["plugins"] if any(c["kind"] == "language" for c in p["components"])}


USE_IN_TOY_WORLD = """
import json, random
from mpm_framework.plugins import get_registry
from mpm_framework.toyworld.scene import questions_for, sample_scene, caption_f1
pack = get_registry().get("language", {code!r}).load_factory()()
rng = random.Random(0)
f1, exact, answers = [], 0, 0
for _ in range(300):
    scene = sample_scene(rng, max_objects=3)
    caption = pack.realise_caption(scene, rng)
    f1.append(caption_f1(pack.parse_caption(caption), scene))
    answers += all(pack.parse_answer(pack.realise_answer(q, rng), q.kind) == q.answer for q in questions_for(scene))
print(json.dumps({"code": pack.code, "f1": sum(f1) / len(f1), "answers": answers, "sample": caption}))
"""


@pytest.mark.slow
def test_packs_install_list_work_and_uninstall(venv, tmp_path):
    assert set(_languages(venv)) == {"mpm-lang-en"}  # only the built-in English to start with
    for folder, (dist, plugin, code, aliases) in PACKS.items():
        source = tmp_path / Path(folder).name
        shutil.copytree(ROOT / folder, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        _pip(venv, "install", "--no-deps", "--no-build-isolation", str(source))
        languages = _languages(venv)
        assert languages[plugin]["distribution"] == dist and languages[plugin]["version"] == "0.1.0"
        assert languages[plugin]["components"] == [{"kind": "language", "name": code, "aliases": aliases}]
        assert f"{code} " in _mpm(venv, "lang", "list")
        # the installed copy is used: not the source folder
        where = _python(venv, f"import {plugin}; print({plugin}.__file__)").stdout
        assert "site-packages" in where and str(ROOT) not in where
        used = _python(venv, USE_IN_TOY_WORLD.replace("{code!r}", repr(code)))
        assert used.returncode == 0, used.stderr
        result = json.loads(used.stdout)
        assert result["code"] == code and result["f1"] == 1.0 and result["answers"] == 300, result

    for dist, plugin, _code, _aliases in PACKS.values():
        _pip(venv, "uninstall", "-y", dist)
        assert plugin not in _languages(venv)
    assert set(_languages(venv)) == {"mpm-lang-en"}
