"""Deprecated names of contract members, kept working for plugins written before a rename.

A contract member renamed for clarity (``PivotLLM.pack`` -> ``pack_sequences``,
``LanguagePack.tokenize`` -> ``segment_words``; see the glossary in
docs/architecture.md) keeps its old name: calling it, or overriding it in a
plugin, still works and warns once per call site with :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings


def warn_renamed(owner: type, old: str, new: str, why: str, *, overridden: bool = False) -> None:
    """Warn that ``owner``'s ``old`` member is now ``new`` (``overridden``: the
    plugin class defines the old name, which the core still calls)."""
    what = f"{owner.__name__} overrides '{old}'" if overridden else f"'{owner.__name__}.{old}' is deprecated"
    warnings.warn(f"{what}: the member is now '{new}' ({why}); the old name will be removed",
                  DeprecationWarning, stacklevel=3)
