"""The Swahili pack: identity here, texts in phrases.py and calibration.py.

Made by `mpm lang new sw`. Tokenisation for metrics (stanza, offline
without models) and language identification (lingua) are the contract's
defaults; a toy-world grammar is optional (docs/language-packs.md).
"""

from __future__ import annotations

from mpm_framework.contracts.language import CalibrationPair, LanguagePack

from . import calibration as _calibration
from . import phrases as _phrases


class SwahiliPack(LanguagePack):
    code = "sw"
    name = "Swahili"
    native_name = "Kiswahili"
    script = "Latn"  # ISO 15924
    lingua_name = "SWAHILI"  # lingua.Language member
    caption_prompts = _phrases.CAPTION_PROMPTS
    phrases = _phrases.PHRASES

    def calibration(self) -> list[CalibrationPair]:
        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in _calibration.PAIRS]

    @property
    def review(self) -> dict[str, str]:
        """Entries a speaker has not checked yet (`mpm lang check` lists them)."""
        return {**_phrases.REVIEW, **_calibration.REVIEW}
