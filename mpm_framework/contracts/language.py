"""The language pack contract: what a real model needs of a language (torch-free).

Required of every pack:

- **identity** — ``code`` (BCP-47), ``name`` (English), ``native_name``,
  ``script`` (ISO 15924), ``lingua_name`` (a ``lingua.Language`` member);
- **phrases** — ``caption_prompts`` and the UI/prompt phrases of
  :data:`PHRASE_KEYS` (checked by :func:`validate_language_pack` whenever a pack
  is loaded through the registry: ``composition.load_language``);
- **calibration** — a small hand-written set of translated instruction pairs.

With defaults (a pack may override them):

- **word segmentation for metrics** — :meth:`LanguagePack.segment_words` takes the stanza
  route of :mod:`mpm_framework.text.stanza_route` for ``stanza_code`` (default:
  ``code``); a pack whose script is written without spaces brings its own word
  segmenter through :meth:`LanguagePack.segmenter` (one token per character is
  only the fallback);
- **language identification** — :meth:`LanguagePack.identify`: lingua combined
  with the packs' vocabularies and scripts (:mod:`mpm_framework.text.langid`).

The toy world's grammar is *not* part of this contract: it is the optional
:class:`~mpm_framework.contracts.toy_grammar.ToyGrammar` capability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MPMError
from .renamed import warn_renamed

IDENTITY = ("code", "name", "native_name", "script", "lingua_name")

# The prompt and UI phrases every pack provides (``pack.phrases[key]``): the
# chat and paint commands, the instruction data builder and the prompt formats
# read them. Placeholders in braces are filled with ``str.format``.
PHRASE_KEYS: dict[str, str] = {
    "user": "label of the user's turns in a transcript ('User')",
    "assistant": "label of the model's turns ('Assistant')",
    "system": "system prompt: an assistant that answers questions about images, in this language",
    "image": "label of an attached image ('Image')",
    "answer_in_language": "an instruction to answer in this language ('Please answer in English.')",
    "paint_prompt": "prefix of a text-to-image prompt ('Paint: ')",
    "paint_saved": "message after painting; placeholder {path}",
    "chat_welcome": "greeting when an interactive chat starts; placeholder {image}",
    "chat_exit_hint": "how to leave the interactive chat",
    "chat_goodbye": "message when the chat ends",
}
PLACEHOLDERS: dict[str, tuple[str, ...]] = {"paint_saved": ("path",), "chat_welcome": ("image",)}
_WHY = "word segmentation for metrics; 'tokenize' is the LLM's tokenizer"


class LanguagePackError(MPMError):
    """A language pack does not fulfil the contract (missing identity or phrases)."""


@dataclass(frozen=True)
class CalibrationPair:
    """A hand-written instruction -> response pair with its English original."""

    instruction: str
    response: str
    instruction_en: str
    response_en: str


class LanguagePack(ABC):
    """Everything MPM needs to know about one language.

    Subclasses set the identity attributes, ``caption_prompts`` and
    ``phrases``, and implement :meth:`calibration`; packs ship as their own
    distributions and register through ``mpm_register_languages``.
    """

    code: str  # BCP-47, e.g. "de"
    name: str  # English name, e.g. "German"
    native_name: str  # e.g. "Deutsch"
    script: str  # ISO 15924, e.g. "Latn", "Hans", "Jpan"
    lingua_name: str  # lingua.Language member, e.g. "GERMAN"
    stanza_code: str | None = None  # when stanza names the language differently from ``code``

    # -- prompts ---------------------------------------------------------------
    caption_prompts: tuple[str, ...]  # several phrasings of "describe the image"
    phrases: dict[str, str]  # the keys of PHRASE_KEYS

    @abstractmethod
    def calibration(self) -> list[CalibrationPair]:
        """The pack's hand-written calibration set (>= 60 pairs)."""

    # -- metrics ---------------------------------------------------------------
    def segmenter(self) -> Callable[[str], list[str]] | None:
        """The pack's own word segmenter (text -> words), or None (default).

        Languages written without spaces (Japanese, Thai, ...) need one for
        metrics (BLEU/CIDEr count words) and for the toy lexicon's word
        boundaries; without it such scripts fall back to one token per character."""
        return None

    @property
    def _stanza_code(self) -> str:
        return self.stanza_code or self.code

    # Word segmentation for metrics is "segment" here: "tokenize" is the LLM's
    # tokenizer (docs/architecture.md, glossary). ``tokenize``/``tokenize_many``/
    # ``tokenizer_route`` are the deprecated names, kept for packs and callers
    # written before the rename; a pack overriding them is still called.
    def segment_words(self, text: str) -> list[str]:
        """Lower-cased words for metrics (BLEU/CIDEr/VQA normalisation): the
        pack's :meth:`segmenter` when it has one, else the stanza route."""
        if type(self).tokenize is not LanguagePack.tokenize:
            warn_renamed(type(self), "tokenize", "segment_words", _WHY, overridden=True)
            return self.tokenize(text)
        return self._segment_words(text)

    def segment_words_many(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`segment_words` over many texts (one batched stanza call per batch)."""
        if type(self).tokenize_many is not LanguagePack.tokenize_many:
            warn_renamed(type(self), "tokenize_many", "segment_words_many", _WHY, overridden=True)
            return self.tokenize_many(texts)
        return self._segment_words_many(texts)

    @property
    def segmentation_route(self) -> str:
        """Which word-segmentation route :meth:`segment_words` takes (e.g. 'stanza-offline-jieba')."""
        from ..text import stanza_route

        return stanza_route.ROUTE_SEGMENTER if self.segmenter() is not None else stanza_route.route(self._stanza_code)

    def _segment_words(self, text: str) -> list[str]:
        from ..text import stanza_route

        segment = self.segmenter()
        if segment is not None:
            return stanza_route.segment(segment, text)
        return [t.lower() for t in stanza_route.tokenize(self._stanza_code, text)]

    def _segment_words_many(self, texts: Sequence[str]) -> list[list[str]]:
        from ..text import stanza_route

        own = (type(self).segment_words is not LanguagePack.segment_words
               or type(self).tokenize is not LanguagePack.tokenize)
        if own or self.segmenter() is not None:
            return [self.segment_words(t) for t in texts]
        return [[t.lower() for t in toks] for toks in stanza_route.tokenize_many(self._stanza_code, texts)]

    def tokenize(self, text: str) -> list[str]:
        """Deprecated name of :meth:`segment_words`."""
        warn_renamed(type(self), "tokenize", "segment_words", _WHY)
        if type(self).segment_words is not LanguagePack.segment_words:
            return self.segment_words(text)
        return self._segment_words(text)  # not segment_words: an old override may call super().tokenize

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Deprecated name of :meth:`segment_words_many`."""
        warn_renamed(type(self), "tokenize_many", "segment_words_many", _WHY)
        if type(self).segment_words_many is not LanguagePack.segment_words_many:
            return self.segment_words_many(texts)
        return self._segment_words_many(texts)

    @property
    def tokenizer_route(self) -> str:
        """Deprecated name of :attr:`segmentation_route`."""
        warn_renamed(type(self), "tokenizer_route", "segmentation_route", _WHY)
        return self.segmentation_route

    def normalize_answer(self, text: str) -> str:
        """Answer normalisation for VQA exact match."""
        return " ".join(self.segment_words(text.lower().strip().rstrip(".!?。！？")))

    # -- language identification -----------------------------------------------
    def owns_word(self, word: str) -> bool:
        """Whether ``word`` belongs to this pack's own vocabulary: evidence for
        language ID on answers too short for a statistical detector. (Words
        written in the pack's script count as evidence without this method.)"""
        return False

    def identify(self, text: str, candidates: Iterable[LanguagePack | str] | None = None) -> str | None:
        """The language code of ``text`` among this pack and ``candidates``
        (default: every installed pack); None when the text has no letters."""
        from ..text import langid

        return langid.identify(text, self._with_self(candidates))

    def is_own_language(self, text: str, candidates: Iterable[LanguagePack | str] | None = None) -> bool | None:
        """Whether ``text`` is in this pack's language (None: no letters)."""
        from ..text import langid

        return langid.is_language(text, self.code, self._with_self(candidates))

    def _with_self(self, candidates: Iterable[LanguagePack | str] | None) -> list[LanguagePack]:
        from ..text import langid

        return [self, *[p for p in langid.resolve(candidates) if p.code != self.code]]

    def describe(self) -> str:
        return f"{self.code} ({self.name} / {self.native_name})"


def missing_phrases(phrases: dict[str, str]) -> list[str]:
    """Keys of :data:`PHRASE_KEYS` that ``phrases`` lacks, or whose placeholders are wrong."""
    bad = [k for k in PHRASE_KEYS if not str(phrases.get(k, "") or "").strip()]
    for key, names in PLACEHOLDERS.items():
        if key in phrases and key not in bad and any("{" + n + "}" not in phrases[key] for n in names):
            bad.append(key)
    return bad


def contract_problems(pack: Any) -> list[str]:
    """What ``pack`` lacks of the contract (empty: it fulfils it)."""
    problems: list[str] = []
    if not isinstance(pack, LanguagePack):
        return [f"{type(pack).__name__} is not a LanguagePack"]
    for attr in IDENTITY:
        value = getattr(pack, attr, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"identity attribute '{attr}' is missing or empty")
    prompts = getattr(pack, "caption_prompts", None)
    if not prompts or isinstance(prompts, str) or not all(isinstance(p, str) and p.strip() for p in prompts):
        problems.append("'caption_prompts' must be a non-empty tuple of strings")
    phrases = getattr(pack, "phrases", None)
    if not isinstance(phrases, dict):
        problems.append(f"'phrases' must be a dict with the keys {', '.join(PHRASE_KEYS)}")
    else:
        for key in missing_phrases(phrases):
            needs = PLACEHOLDERS.get(key)
            hint = f" (with placeholder {', '.join('{' + n + '}' for n in needs)})" if needs else ""
            problems.append(f"phrase '{key}'{hint} is missing: {PHRASE_KEYS[key]}")
    return problems


def validate_language_pack(pack: Any, source: str = "") -> None:
    """Raise :class:`LanguagePackError` listing everything ``pack`` lacks of the contract."""
    problems = contract_problems(pack)
    if problems:
        who = source or f"{getattr(pack, 'code', '?')} ({type(pack).__module__}.{type(pack).__name__})"
        raise LanguagePackError(f"language pack {who} is incomplete:\n  " + "\n  ".join(problems)
                                + "\nSee docs/language-packs.md (the minimal pack).")
