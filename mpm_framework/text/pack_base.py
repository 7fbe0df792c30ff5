"""The shared half of a language pack: metrics, identification and parsing.

A pack subclasses :class:`BaseLanguagePack`, sets its identity, prompts,
phrases and :class:`~mpm_framework.text.toy_lexicon.ToyLexicon`, and writes
its own grammar (``realise_*``). Tokenisation (the stanza route), language
identification and parsing are the same code for every language, so numbers
are comparable across languages.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contracts.language import LanguagePack
from ..toyworld.scene import ObjectSpec
from . import langid, stanza_route
from .toy_lexicon import ToyLexicon


class BaseLanguagePack(LanguagePack):
    """:class:`LanguagePack` plus the shared plumbing.

    Subclasses set, besides the contract's attributes:

    - ``instruction_templates``: ways to frame a question in this language
      (``"{question}"`` placeholder), for instruction data;
    - ``lexicon``: the toy-world :class:`ToyLexicon`;
    - ``function_words``: the closed-class words the templates use (articles,
      verbs, prepositions), which with the lexicon make up the vocabulary the
      pack *owns* for language identification;
    - optionally ``stanza_code`` when stanza names the language differently.
    """

    instruction_templates: tuple[str, ...] = ("{question}",)
    lexicon: ToyLexicon
    function_words: frozenset[str] = frozenset()
    stanza_code: str | None = None

    # -- metrics ---------------------------------------------------------------
    @property
    def _stanza_code(self) -> str:
        return self.stanza_code or self.code

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased tokens from the stanza route (metrics are case-insensitive)."""
        return [t.lower() for t in stanza_route.tokenize(self._stanza_code, text)]

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`tokenize` for many texts at once (one batched stanza call per batch)."""
        return [[t.lower() for t in toks] for toks in stanza_route.tokenize_many(self._stanza_code, texts)]

    @property
    def tokenizer_route(self) -> str:
        return stanza_route.route(self._stanza_code)

    # -- language identification -------------------------------------------------
    def vocabulary(self) -> frozenset[str]:
        """Words this pack owns: its toy lexicon and its templates' function words."""
        cached = self.__dict__.get("_vocabulary")
        if cached is None:
            cached = frozenset(langid.words_of(" ".join([*self.lexicon.words(), *self.function_words])))
            self.__dict__["_vocabulary"] = cached
        return cached

    def owns_word(self, word: str) -> bool:
        return word.lower() in self.vocabulary()

    # -- toy world: parsing is shared ------------------------------------------------
    def parse_caption(self, text: str) -> list[ObjectSpec]:
        return self.lexicon.parse_objects(text)

    def parse_answer(self, text: str, kind: str) -> str | None:
        return self.lexicon.parse_value(text, kind)
