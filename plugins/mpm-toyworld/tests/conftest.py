"""Toy-world fixtures: the installed language packs (English plus zh/de/fr)."""

from __future__ import annotations

import pytest

TARGETS = ("zh", "de", "fr")


@pytest.fixture(scope="session")
def packs():
    """English and every shipped target pack that is installed (the demo reads
    packs from the registry, as users install them)."""
    from mpm_framework.composition import load_language
    from mpm_framework.plugins import get_registry

    names = get_registry().names("language")
    missing = [c for c in TARGETS if c not in names]
    if missing:
        pytest.skip(f"language packs not installed: {missing} (bash scripts/install.sh)")
    return {code: load_language(code) for code in ("en", *TARGETS)}
