"""The toy world in Spanish: agreement, ser / estar, number.

- Adjectives follow the noun and agree with it in gender and number: the
  shapes and ``objeto`` are masculine (``un círculo rojo pequeño``);
  ``figura`` is feminine (``una figura roja pequeña en forma de círculo``);
  ``verde``, ``azul`` and ``grande`` have one form for both genders.
- ``ser`` for what a thing is (``es rojo``), ``estar`` for where it is
  (``está a la izquierda``).
- Counting agrees with the counted noun: ``una sola figura`` / ``un solo
  objeto``; ``¿Cuántas figuras hay?`` — ``Una.`` / ``Dos figuras.``
- The passive ``se`` agrees with its subject: ``se ve un círculo`` /
  ``se ven un círculo y un cuadrado``.
"""

from __future__ import annotations

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "círculo", "square": "cuadrado", "triangle": "triángulo"}  # all masculine
# COLOR[value][gender + number]: m/f, s/p
COLOR = {
    "red": {"ms": "rojo", "fs": "roja", "mp": "rojos", "fp": "rojas"},
    "green": {"ms": "verde", "fs": "verde", "mp": "verdes", "fp": "verdes"},
    "blue": {"ms": "azul", "fs": "azul", "mp": "azules", "fp": "azules"},
    "yellow": {"ms": "amarillo", "fs": "amarilla", "mp": "amarillos", "fp": "amarillas"},
}
SIZE = {
    "small": {"ms": "pequeño", "fs": "pequeña", "mp": "pequeños", "fp": "pequeñas"},
    "large": {"ms": "grande", "fs": "grande", "mp": "grandes", "fp": "grandes"},
}
POSITION = {
    "left": ("a la izquierda", "en la parte izquierda"),
    "right": ("a la derecha", "en la parte derecha"),
    "top": ("arriba", "en la parte superior"),
    "bottom": ("abajo", "en la parte inferior"),
}
NUMBER = {"1": "una", "2": "dos", "3": "tres"}  # agreeing with "figura"
ONE = {"figura": "una sola figura", "objeto": "un solo objeto"}


def noun_phrase(color: str, shape: str, size: str) -> str:
    """``un círculo rojo pequeño``: noun, then colour, then size, all masculine singular."""
    return f"un {NOUN[shape]} {COLOR[color]['ms']} {SIZE[size]['ms']}"


def figure_phrase(color: str, shape: str, size: str) -> str:
    """``una figura roja pequeña en forma de círculo``: the adjectives agree with ``figura``."""
    return f"una figura {COLOR[color]['fs']} {SIZE[size]['fs']} en forma de {NOUN[shape]}"


def count_noun(n: int, noun: str = "figura") -> str:
    """``una sola figura`` / ``dos figuras``; ``un solo objeto`` / ``dos objetos``."""
    return ONE[noun] if n == 1 else f"{NUMBER[str(n)]} {noun}s"


def one_sees(n: int) -> str:
    """The passive ``se`` agrees with its subject: ``se ve`` / ``se ven``."""
    return "se ve" if n == 1 else "se ven"


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for attr, table in (("color", COLOR), ("size", SIZE)):
        for value, forms in table.items():
            out.update({form: (attr, value) for form in forms.values()})
    for value, noun in NOUN.items():
        out.update({noun: ("shape", value), noun + "s": ("shape", value)})
    out.update({"circulo": ("shape", "circle"), "triangulo": ("shape", "triangle")})  # without accents
    out.update({"izquierda": ("position", "left"), "derecha": ("position", "right"),
                "arriba": ("position", "top"), "superior": ("position", "top"),
                "abajo": ("position", "bottom"), "inferior": ("position", "bottom")})
    numbers = {"un": "1", "una": "1", "uno": "1", "sola": "1", "solo": "1", "dos": "2", "tres": "3",
               "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon("es", _entries(), boundaries=("y", ",", ";", ".", ":", "¿", "?", "¡", "!"),
                     weak_numbers=("un", "una"))

FUNCTION_WORDS = frozenset(
    "hay la el imagen muestra contiene un una a en parte figura figuras forma formas objeto objetos de es está "
    "qué color tiene dónde cuántas se ven ve".split()
)
