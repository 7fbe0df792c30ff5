"""The language packs the toy world can use: those with a toy grammar.

A pack's grammar is either the pack itself (grammar methods inline) or one a
plugin registered through ``mpm_register_toy_grammars``
(:func:`mpm_framework.text.toy_grammars.toy_grammar`). The toy world calls
``realise_*`` / ``parse_*`` and the pack's own members (phrases, calibration,
word segmentation, language ID) on one object, so a registered grammar is joined
to its pack by :class:`PackWithGrammar`.
"""

from __future__ import annotations

from typing import Any

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.contracts.toy_grammar import GRAMMAR_METHODS
from mpm_framework.text.toy_grammars import require_toy_grammar, toy_grammar


class PackWithGrammar:
    """A language pack whose toy-grammar methods come from a separately
    registered grammar; every other member is the pack's."""

    def __init__(self, pack: LanguagePack, grammar: Any) -> None:
        self.pack, self.grammar = pack, grammar

    def __getattr__(self, name: str) -> Any:
        if name in GRAMMAR_METHODS:
            return getattr(self.grammar, name)
        return getattr(self.pack, name)


def with_grammar(pack: LanguagePack) -> Any:
    """The pack ready for the toy world; a clear error when it has no toy grammar."""
    grammar = require_toy_grammar(pack)
    return pack if grammar is pack else PackWithGrammar(pack, grammar)


def load_packs(langs: list[str]) -> dict[str, Any]:
    """English plus the target languages, from the installed language packs;
    each must have a toy grammar."""
    from mpm_framework.composition import load_language
    from mpm_framework.plugins import get_registry

    registry = get_registry()
    packs: dict[str, Any] = {}
    for code in ["en", *langs]:
        reg = registry.get("language", code)  # unknown code: error naming the installed packs
        packs[reg.name] = with_grammar(load_language(reg.name))
    return packs


def installed_targets() -> tuple[list[str], list[str]]:
    """Installed target languages (English aside): (with a toy grammar, without one)."""
    from mpm_framework.composition import load_language
    from mpm_framework.plugins import get_registry

    usable, skipped = [], []
    for code in get_registry().names("language"):
        if code != "en":
            (usable if toy_grammar(load_language(code)) is not None else skipped).append(code)
    return usable, skipped
