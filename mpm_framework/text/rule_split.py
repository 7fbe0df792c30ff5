"""The rule-based split used when stanza's neural tokenizer is not installed.

Stanza's offline route for languages written with spaces runs the pipeline in
``tokenize_pretokenized`` mode, so the words must be split beforehand. The rule
is deliberately small and fully specified, so that metrics computed offline are
reproducible:

1. The text is NFC-normalised; typographic apostrophes become ``'``.
2. Sentences end after ``. ! ? …`` followed by whitespace, after ``。！？``
   (no space needed), and at line breaks.
3. Within a sentence, tokens are, in order of precedence: numbers with inner
   separators (``3.5``, ``1,000``, ``12:30``); words (letters, with inner
   hyphens and apostrophes kept: ``peut-être``, ``O'Brien``); every other
   non-space character on its own (punctuation, symbols).
4. Language-specific clitic rules, applied to the words of step 3:
   - French, Italian, Catalan: an elided article/pronoun/preposition is its own
     token: ``l'image`` -> ``l'`` ``image``, ``qu'il`` -> ``qu'`` ``il``,
     ``dell'acqua`` -> ``dell'`` ``acqua``;
   - French: subject pronouns after an inverted verb are split off:
     ``a-t-il`` -> ``a`` ``-t-il``, ``voit-on`` -> ``voit`` ``-on`` (the UD
     French treebanks do the same);
   - English: ``n't`` and the clitics ``'s 're 've 'll 'd 'm`` are split off:
     ``don't`` -> ``do`` ``n't`` (Penn Treebank convention).
5. Han, kana and hangul characters, which this rule cannot segment into words,
   are one token each (Chinese itself goes through jieba, not through here).
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'"})
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])|\n+")
_TOKEN = re.compile(
    r"\d+(?:[.,:]\d+)*"  # numbers
    r"|[^\W\d_]+(?:['\-][^\W\d_]+)*"  # words with inner hyphens / apostrophes
    r"|[^\w\s]"  # any other single character
)
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")

_ELISION = {
    "fr": re.compile(r"^((?:jusqu|lorsqu|puisqu|quoiqu|presqu|qu|[cdjlmnst])')(.+)$", re.IGNORECASE),
    "it": re.compile(r"^((?:dall|dell|nell|sull|all|coll|quest|quell|nessun|buon|un|[cdlmnstv])')(.+)$",
                     re.IGNORECASE),
    "ca": re.compile(r"^((?:[dlmnst])')(.+)$", re.IGNORECASE),
}
_FR_INVERSION = re.compile(r"^(.+?)(-t-(?:il|elle|on)|-(?:il|elle|on|ils|elles|je|tu|nous|vous|ce))$",
                           re.IGNORECASE)
_EN_CLITIC = re.compile(r"^(.+?)(n't|'(?:s|re|ve|ll|d|m))$", re.IGNORECASE)


def _base_code(code: str) -> str:
    return code.lower().replace("_", "-").split("-")[0]


def _split_word(word: str, lang: str) -> list[str]:
    if _CJK.search(word):
        return list(word)
    if lang in _ELISION:
        m = _ELISION[lang].match(word)
        if m:
            return [m.group(1), *_split_word(m.group(2), lang)]
    if lang == "fr":
        m = _FR_INVERSION.match(word)
        if m and m.group(1).isalpha():
            return [m.group(1), m.group(2)]
    if lang == "en":
        m = _EN_CLITIC.match(word)
        if m:
            return [m.group(1), m.group(2)]
    return [word]


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def normalize(text: str) -> str:
    """NFC with one kind of apostrophe (step 1 of the rule)."""
    return unicodedata.normalize("NFC", text).translate(_APOSTROPHES)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (step 2), empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END.split(normalize(text)) if s and s.strip()]


def split_words(text: str, code: str) -> list[str]:
    """Tokens of one sentence (steps 3-5) for the language ``code``."""
    lang = _base_code(code)
    out: list[str] = []
    for token in _TOKEN.findall(normalize(text)):
        out.extend(_split_word(token, lang))
    return out


def split(text: str, code: str) -> list[list[str]]:
    """The whole rule: a list of sentences, each a list of tokens."""
    return [words for words in (split_words(s, code) for s in split_sentences(text)) if words]
