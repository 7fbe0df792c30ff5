"""Find the toy grammar of a language pack, if it has one (torch-free).

A grammar comes from a plugin's ``mpm_register_toy_grammars(register)`` hook
(``register(code, "pkg.module:Factory", aliases=...)``; ``Factory(pack)``
returns the grammar), else from the pack itself when it defines the five
grammar methods inline (:class:`~mpm_framework.contracts.toy_grammar.ToyGrammar`).
A registered grammar wins over an inline one, so a plugin can replace a
pack's grammar without touching the pack.
"""

from __future__ import annotations

from typing import Any

from ..contracts.toy_grammar import NoToyGrammarError, ToyGrammar
from ..errors import DuplicateComponentError


def registered_grammars() -> dict[str, str]:
    """Language code (and alias) -> factory import string, from every plugin's
    ``mpm_register_toy_grammars`` (the ``"toy_grammar"`` kind of the plugin
    registry; a code two plugins claim is left out: :func:`toy_grammar` reports it)."""
    from ..plugins import get_registry

    registry = get_registry()
    found: dict[str, str] = {}
    for reg in registry.entries["toy_grammar"].values():
        for key in (reg.name, *reg.aliases):
            if registry.conflict_for("toy_grammar", key) is None:
                found[key] = reg.factory
    return found


def toy_grammar(pack: Any) -> ToyGrammar | None:
    """The pack's toy grammar: a registered one, else the pack itself if it
    defines the grammar methods, else None."""
    from ..plugins import get_registry
    from ..registry import import_string

    conflict = get_registry().conflict_for("toy_grammar", pack.code)
    if conflict is not None:
        raise DuplicateComponentError(conflict.message())
    factory = registered_grammars().get(pack.code)
    if factory is not None:
        grammar = import_string(factory)(pack)
        if not isinstance(grammar, ToyGrammar):
            raise NoToyGrammarError(f"the toy grammar registered for '{pack.code}' ({factory}) does not "
                                    "define realise_caption/question/answer and parse_caption/answer")
        return grammar
    return pack if isinstance(pack, ToyGrammar) else None


def has_toy_grammar(pack: Any) -> bool:
    return toy_grammar(pack) is not None


def require_toy_grammar(pack: Any) -> ToyGrammar:
    """The pack's toy grammar, or a clear error saying it has none."""
    grammar = toy_grammar(pack)
    if grammar is None:
        raise NoToyGrammarError(
            f"language '{pack.code}' ({pack.name}) has no toy grammar, so the toy world cannot use it: "
            "a pack works for real models without one. Add one (define realise_caption, realise_question, "
            "realise_answer, parse_caption and parse_answer on the pack, or register a grammar through "
            "mpm_register_toy_grammars) -- see docs/language-packs.md, 'Adding a toy grammar'.")
    return grammar
