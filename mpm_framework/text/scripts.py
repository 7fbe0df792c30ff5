"""Writing systems by Unicode block (torch-free).

Two facts about a character matter to MPM, and both follow from its block:

- its **script**, so that a word written in, say, kana is evidence for the
  packs that write kana (:mod:`.langid`), whoever registered first;
- whether the script separates words with spaces. Han, kana, Thai, Lao,
  Khmer, Myanmar and Tibetan do not: a tokenizer must not let merges run
  across such text as if it were one word, and without a pack's own segmenter
  each character is a token.

A pack declares its script as an ISO 15924 code (``script = "Jpan"``);
:data:`ISO_SCRIPTS` says which block scripts each code writes with (Japanese:
Han + hiragana + katakana; Korean: Hangul + Han).
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

# (first, last, script) -- Unicode blocks of the scripts MPM's packs write.
BLOCKS: tuple[tuple[int, int, str], ...] = tuple(sorted((
    (0x0041, 0x005A, "Latn"), (0x0061, 0x007A, "Latn"), (0x00C0, 0x024F, "Latn"),
    (0x1E00, 0x1EFF, "Latn"), (0x2C60, 0x2C7F, "Latn"), (0xA720, 0xA7FF, "Latn"),
    (0x0370, 0x03FF, "Grek"), (0x1F00, 0x1FFF, "Grek"),
    (0x0400, 0x052F, "Cyrl"),
    (0x0530, 0x058F, "Armn"),
    (0x0590, 0x05FF, "Hebr"),
    (0x0600, 0x06FF, "Arab"), (0x0750, 0x077F, "Arab"), (0xFB50, 0xFDFF, "Arab"), (0xFE70, 0xFEFF, "Arab"),
    (0x0900, 0x097F, "Deva"), (0x0980, 0x09FF, "Beng"), (0x0A00, 0x0A7F, "Guru"), (0x0A80, 0x0AFF, "Gujr"),
    (0x0B00, 0x0B7F, "Orya"), (0x0B80, 0x0BFF, "Taml"), (0x0C00, 0x0C7F, "Telu"), (0x0C80, 0x0CFF, "Knda"),
    (0x0D00, 0x0D7F, "Mlym"), (0x0D80, 0x0DFF, "Sinh"),
    (0x0E00, 0x0E7F, "Thai"), (0x0E80, 0x0EFF, "Laoo"), (0x0F00, 0x0FFF, "Tibt"), (0x1000, 0x109F, "Mymr"),
    (0x10A0, 0x10FF, "Geor"), (0x1200, 0x139F, "Ethi"), (0x1780, 0x17FF, "Khmr"),
    (0x1100, 0x11FF, "Hang"), (0x3130, 0x318F, "Hang"), (0xAC00, 0xD7AF, "Hang"),
    (0x3040, 0x309F, "Hira"), (0x30A0, 0x30FF, "Kana"), (0x31F0, 0x31FF, "Kana"), (0xFF66, 0xFF9F, "Kana"),
    (0x2E80, 0x2FDF, "Hani"), (0x3005, 0x3007, "Hani"), (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"),
    (0xF900, 0xFAFF, "Hani"), (0x20000, 0x2FA1F, "Hani"),
)))
_STARTS = [b[0] for b in BLOCKS]

# Scripts whose words are not separated by spaces.
UNSPACED = frozenset({"Hani", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
# Punctuation written with them (CJK symbols and punctuation, full-width forms):
# one character per token too, as in the scripts' own text.
UNSPACED_PUNCTUATION = ((0x3000, 0x303F), (0xFF00, 0xFFEF))

# ISO 15924 code a pack declares -> the block scripts it writes with.
ISO_SCRIPTS: dict[str, frozenset[str]] = {
    "Hans": frozenset({"Hani"}), "Hant": frozenset({"Hani"}), "Hani": frozenset({"Hani"}),
    "Jpan": frozenset({"Hani", "Hira", "Kana"}), "Kore": frozenset({"Hang", "Hani"}),
    "Hrkt": frozenset({"Hira", "Kana"}),
}


def script_of(char: str) -> str | None:
    """The block script of one character (None: digits, punctuation, unknown blocks)."""
    cp = ord(char)
    i = bisect.bisect_right(_STARTS, cp) - 1
    if i >= 0 and BLOCKS[i][0] <= cp <= BLOCKS[i][1]:
        return BLOCKS[i][2]
    return None


def scripts_of_pack(iso_script: str | None) -> frozenset[str]:
    """The block scripts a pack declaring ``iso_script`` writes with."""
    if not iso_script:
        return frozenset()
    return ISO_SCRIPTS.get(iso_script, frozenset({iso_script}))


def written_in(word: str, scripts: frozenset[str]) -> bool:
    """Whether every letter of ``word`` is in one of ``scripts`` (and it has one)."""
    seen = False
    for char in word:
        script = script_of(char)
        if script is None:
            continue
        if script not in scripts:
            return False
        seen = True
    return seen


@lru_cache(maxsize=1)
def unspaced_character_class() -> str:
    """A regex character class matching one character of any script written
    without spaces; written with the characters themselves, so Python's ``re``
    and the Hugging Face ``tokenizers`` regex engine read it alike."""
    blocks = [(first, last) for first, last, script in BLOCKS if script in UNSPACED] + list(UNSPACED_PUNCTUATION)
    ranges = "".join(f"{chr(first)}-{chr(last)}" for first, last in blocks)
    return f"[{ranges}]"


@lru_cache(maxsize=1)
def _unspaced_re() -> re.Pattern[str]:
    return re.compile(unspaced_character_class())


def is_unspaced(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces."""
    return _unspaced_re().fullmatch(char) is not None
