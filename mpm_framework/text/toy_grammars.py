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

_registered: tuple[Any, dict[str, str]] | None = None  # (plugin manager, code -> factory string)


def registered_grammars() -> dict[str, str]:
    """Language code (and alias) -> factory import string, from every plugin's
    ``mpm_register_toy_grammars`` (rebuilt when the plugins change)."""
    global _registered
    from ..plugins import get_plugin_manager, get_registry

    pm = get_plugin_manager()
    registry = get_registry()  # rebuilt by register_plugin / unregister_plugin: our cache key
    if _registered is not None and _registered[0] is registry:
        return dict(_registered[1])
    found: dict[str, str] = {}
    owner: dict[str, str] = {}
    for impl in pm.hook.mpm_register_toy_grammars.get_hookimpls():

        def register(code: str, factory: str, *, aliases: tuple[str, ...] | list[str] = (),
                     _plugin: str = impl.plugin_name) -> None:
            for key in (code, *aliases):
                if key in found and found[key] != factory:
                    raise DuplicateComponentError(
                        f"toy grammar for '{key}' registered twice: by {owner[key]} and by {_plugin}")
                found[key], owner[key] = factory, _plugin

        impl.function(register=register)
    _registered = (registry, found)
    return dict(found)


def toy_grammar(pack: Any) -> ToyGrammar | None:
    """The pack's toy grammar: a registered one, else the pack itself if it
    defines the grammar methods, else None."""
    from ..registry import import_string

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
