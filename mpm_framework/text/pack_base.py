"""The shared half of a language pack: vocabulary for language ID, and parsing.

A pack subclasses :class:`BaseLanguagePack`, sets its identity, prompts and
phrases and writes :meth:`calibration`; that is a complete pack. For the toy
world it may add a :class:`~mpm_framework.text.toy_lexicon.ToyLexicon` and its
own grammar (``realise_*``): parsing through the lexicon is then shared, and
the pack is its own :class:`~mpm_framework.contracts.toy_grammar.ToyGrammar`.
Tokenisation (the stanza route) and language identification are the same code
for every language (the contract's defaults), so numbers are comparable
across languages.
"""

from __future__ import annotations

from ..contracts.language import LanguagePack
from ..contracts.toy_grammar import ObjectSpec
from . import langid
from .toy_lexicon import ToyLexicon


class BaseLanguagePack(LanguagePack):
    """:class:`LanguagePack` plus the shared plumbing.

    Subclasses set, besides the contract's attributes:

    - ``instruction_templates``: ways to frame a question in this language
      (``"{question}"`` placeholder), for instruction data;
    - ``function_words``: closed-class words of the language (articles, verbs,
      prepositions), part of the vocabulary the pack *owns* for language ID;
    - optionally ``lexicon``: the toy-world :class:`ToyLexicon` (its words
      join the vocabulary; ``parse_caption``/``parse_answer`` read it);
    - optionally ``stanza_code`` when stanza names the language differently.
    """

    instruction_templates: tuple[str, ...] = ("{question}",)
    lexicon: ToyLexicon | None = None
    function_words: frozenset[str] = frozenset()

    # -- language identification -------------------------------------------------
    def vocabulary(self) -> frozenset[str]:
        """Words this pack owns: its toy lexicon (if any) and its function words."""
        cached = self.__dict__.get("_vocabulary")
        if cached is None:
            lexical = self.lexicon.words() if self.lexicon is not None else frozenset()
            cached = frozenset(langid.words_of(" ".join([*lexical, *self.function_words])))
            self.__dict__["_vocabulary"] = cached
        return cached

    def owns_word(self, word: str) -> bool:
        return word.lower() in self.vocabulary()

    # -- toy world: parsing through the lexicon is shared -------------------------------
    def _require_lexicon(self) -> ToyLexicon:
        """The lexicon, matching on the words of the pack's segmenter when it has one."""
        if self.lexicon is None:
            from ..contracts.toy_grammar import NoToyGrammarError

            raise NoToyGrammarError(f"language '{self.code}' has no toy lexicon to parse with")
        segment = self.segmenter()
        if segment is None or self.lexicon.segmenter is not None:
            return self.lexicon
        bound = self.__dict__.get("_segmented_lexicon")
        if bound is None:
            bound = self.__dict__["_segmented_lexicon"] = self.lexicon.with_segmenter(segment)
        return bound

    def parse_caption(self, text: str) -> list[ObjectSpec]:
        return self._require_lexicon().parse_objects(text)

    def parse_answer(self, text: str, kind: str) -> str | None:
        return self._require_lexicon().parse_value(text, kind)
