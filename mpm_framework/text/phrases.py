"""The UI phrases every language pack provides (``pack.phrases[key]``).

The keys and their meaning are part of the pack contract and declared there
(:data:`mpm_framework.contracts.language.PHRASE_KEYS`); a pack loaded through the
registry is checked against them. This module re-exports them for the code and
packs that import them from here.
"""

from __future__ import annotations

from ..contracts.language import PHRASE_KEYS, PLACEHOLDERS, missing_phrases

__all__ = ["PHRASE_KEYS", "PLACEHOLDERS", "missing_phrases"]
