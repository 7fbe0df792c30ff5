"""Load installed language packs, checked against the contract (torch-free).

Every route that instantiates a pack from the registry comes through here
(``composition.load_language``, language ID's candidate list), so an
incomplete pack is reported once, by name, with what it lacks -- not later as
a ``KeyError`` in the middle of a chat or a training run.
"""

from __future__ import annotations

from ..contracts.language import LanguagePack, validate_language_pack


def load_pack(code: str) -> LanguagePack:
    """The language pack registered under ``code`` (or an alias), validated.

    Raises :class:`~mpm_framework.errors.UnknownComponentError` (with "did you
    mean") for an unknown code and
    :class:`~mpm_framework.contracts.language.LanguagePackError` listing the
    missing identity attributes and phrases of an incomplete pack."""
    from ..plugins import get_registry

    registration = get_registry().get("language", code)
    pack = registration.load_factory()()
    validate_language_pack(pack, source=f"'{registration.name}' (plugin {registration.plugin})")
    return pack
