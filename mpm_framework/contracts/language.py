"""The language pack contract (torch-free: packs are listed without torch)."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..toyworld.scene import ObjectSpec, Question, Scene


@dataclass(frozen=True)
class CalibrationPair:
    """A hand-written instruction -> response pair with its English original."""

    instruction: str
    response: str
    instruction_en: str
    response_en: str


class LanguagePack(ABC):
    """Everything MPM needs to know about one language.

    Subclasses set the identity attributes and implement the methods; packs
    ship as their own distributions and register through
    ``mpm_register_languages``.
    """

    code: str  # BCP-47, e.g. "de"
    name: str  # English name, e.g. "German"
    native_name: str  # e.g. "Deutsch"
    script: str  # ISO 15924, e.g. "Latn", "Hans"
    lingua_name: str  # lingua.Language member, e.g. "GERMAN"

    # -- prompts ---------------------------------------------------------------
    caption_prompts: tuple[str, ...]  # several phrasings of "describe the image"
    phrases: dict[str, str]  # UI phrases: "user", "assistant", "paint_prompt", ...

    @abstractmethod
    def calibration(self) -> list[CalibrationPair]:
        """The pack's hand-written calibration set (>= 60 pairs)."""

    # -- metrics ---------------------------------------------------------------
    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """Words for metrics (BLEU/CIDEr/VQA normalisation)."""

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`tokenize` over many texts (packs may batch)."""
        return [self.tokenize(t) for t in texts]

    @property
    def tokenizer_route(self) -> str:
        """Which tokenisation route ``tokenize`` took (e.g. 'stanza-full')."""
        return "rule-based"

    def normalize_answer(self, text: str) -> str:
        """Answer normalisation for VQA exact match."""
        return " ".join(self.tokenize(text.lower().strip().rstrip(".!?。！？")))

    # -- language identification -----------------------------------------------
    def owns_word(self, word: str) -> bool:
        """Whether ``word`` belongs to this pack's own vocabulary: evidence for
        language ID on answers too short for a statistical detector."""
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

    # -- toy world -------------------------------------------------------------
    @abstractmethod
    def realise_caption(self, scene: Scene, rng: random.Random) -> str:
        """A grammatical caption of the scene; ``rng`` picks among templates."""

    @abstractmethod
    def realise_question(self, question: Question, rng: random.Random) -> str:
        """The question in this language."""

    @abstractmethod
    def realise_answer(self, question: Question, rng: random.Random) -> str:
        """A short answer in this language."""

    @abstractmethod
    def parse_caption(self, text: str) -> list[ObjectSpec]:
        """Recover the objects a (generated) caption describes."""

    @abstractmethod
    def parse_answer(self, text: str, kind: str) -> str | None:
        """Canonical English value of an answer (``"red"``, ``"2"``) or None."""

    def describe(self) -> str:
        return f"{self.code} ({self.name} / {self.native_name})"
