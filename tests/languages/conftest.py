"""Language-pack fixtures: one instance of shipped packs.

The packs are separate distributions that ``scripts/install.sh`` installs from
``languages/``; for in-process tests a pack that is not importable (a checkout
without the install) is imported from its source folder.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# code -> (distribution folder, factory)
PACKS = {
    "en": (None, "mpm_framework.lang_en.pack:EnglishPack"),
    "zh": (ROOT / "languages" / "mpm-lang-zh", "mpm_lang_zh.pack:ChinesePack"),
    "de": (ROOT / "languages" / "mpm-lang-de", "mpm_lang_de.pack:GermanPack"),
    "fr": (ROOT / "languages" / "mpm-lang-fr", "mpm_lang_fr.pack:FrenchPack"),
    "es": (ROOT / "languages" / "mpm-lang-es", "mpm_lang_es.pack:SpanishPack"),
}


def load_pack(code: str):
    folder, factory = PACKS[code]
    module_name, _, cls = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        assert folder is not None
        sys.path.insert(0, str(folder))
        module = importlib.import_module(module_name)
    return getattr(module, cls)()


@pytest.fixture(scope="session")
def packs() -> dict:
    return {code: load_pack(code) for code in PACKS}


@pytest.fixture(scope="session")
def candidates(packs) -> list:
    return list(packs.values())


def pytest_generate_tests(metafunc):
    """A test that takes ``pack_code`` (or ``pack``) runs once per pack."""
    if "pack_code" in metafunc.fixturenames:
        metafunc.parametrize("pack_code", list(PACKS))


@pytest.fixture
def pack(packs, pack_code):
    return packs[pack_code]
