"""Toy-world fixtures: the installed language packs (English plus zh/de/fr)."""

from __future__ import annotations

import pytest

from mpm_framework.testing import mpm_plugin, one_thread, tiny_components  # noqa: F401  (fixtures; one_thread is autouse)

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


@pytest.fixture
def paint_components(tiny_components, mpm_plugin):  # noqa: F811
    """The tiny pivot plus the ``unet`` decoder (registered in-process when the
    mpm-paint-unet distribution is not installed)."""
    plugin = pytest.importorskip("mpm_paint_unet.plugin", reason="the paint experiment needs mpm-paint-unet")

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm_paint_unet")
    yield
