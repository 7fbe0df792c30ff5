"""The toy world in (Brazilian) Portuguese: agreement, ser / estar, contractions.

- Adjectives follow the noun and agree with it in gender and number: the
  shapes (círculo, quadrado, triângulo) and ``objeto`` are masculine
  (``um círculo vermelho pequeno``); ``figura`` and ``forma`` are feminine
  (``uma figura vermelha pequena em forma de círculo``); ``verde``, ``azul``
  and ``grande`` have one singular form for both genders.
- Numbers agree with the counted noun: ``uma única figura`` / ``duas
  figuras`` but ``um único objeto`` / ``dois objetos``; ``três`` is
  invariable. ``Quantas figuras?`` is answered ``Duas.``, in the feminine.
- Place adjectives agree too: ``à esquerda`` (a + a) but ``do lado esquerdo``
  (de + o, ``lado`` is masculine).
- ``ser`` for what a thing is (``é vermelho``), ``estar`` / ``ficar`` for where
  it is (``está à esquerda``, ``fica em cima``).
"""

from __future__ import annotations

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "círculo", "square": "quadrado", "triangle": "triângulo"}
GENDER = {"circle": "m", "square": "m", "triangle": "m"}
# COLOR[value][gender + number]
COLOR = {
    "red": {"ms": "vermelho", "fs": "vermelha", "mp": "vermelhos", "fp": "vermelhas"},
    "green": {"ms": "verde", "fs": "verde", "mp": "verdes", "fp": "verdes"},
    "blue": {"ms": "azul", "fs": "azul", "mp": "azuis", "fp": "azuis"},
    "yellow": {"ms": "amarelo", "fs": "amarela", "mp": "amarelos", "fp": "amarelas"},
}
SIZE = {
    "small": {"ms": "pequeno", "fs": "pequena", "mp": "pequenos", "fp": "pequenas"},
    "large": {"ms": "grande", "fs": "grande", "mp": "grandes", "fp": "grandes"},
}
ARTICLE = {"m": "um", "f": "uma"}
DEFINITE = {"m": "o", "f": "a"}
OF_THE = {"m": "do", "f": "da"}  # de + o / de + a
# NUMBER[gender][n]: um/uma, dois/duas, três
NUMBER = {"m": {"1": "um", "2": "dois", "3": "três"}, "f": {"1": "uma", "2": "duas", "3": "três"}}
ONLY = {"m": "único", "f": "única"}
POSITION = {
    "left": ("à esquerda", "do lado esquerdo"),
    "right": ("à direita", "do lado direito"),
    "top": ("em cima", "na parte superior"),
    "bottom": ("embaixo", "na parte inferior"),
}


def noun_phrase(color: str, shape: str, size: str) -> str:
    """``um círculo vermelho pequeno``: noun, colour, size, masculine singular."""
    g = GENDER[shape] + "s"
    return f"{ARTICLE[GENDER[shape]]} {NOUN[shape]} {COLOR[color][g]} {SIZE[size][g]}"


def figure_phrase(color: str, shape: str, size: str) -> str:
    """``uma figura vermelha pequena em forma de círculo``: the adjectives agree with ``figura``."""
    return f"uma figura {COLOR[color]['fs']} {SIZE[size]['fs']} em forma de {NOUN[shape]}"


def definite(shape: str) -> str:
    """``o círculo``."""
    return f"{DEFINITE[GENDER[shape]]} {NOUN[shape]}"


def of_the(shape: str) -> str:
    """``do círculo`` (de + o contracts)."""
    return f"{OF_THE[GENDER[shape]]} {NOUN[shape]}"


def count_noun(n: int, noun: str = "figura") -> str:
    """``uma única figura`` / ``duas figuras``; ``um único objeto`` / ``dois objetos``."""
    gender = {"figura": "f", "objeto": "m"}[noun]
    if n == 1:
        return f"{ARTICLE[gender]} {ONLY[gender]} {noun}"
    return f"{NUMBER[gender][str(n)]} {noun}s"


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for attr, table in (("color", COLOR), ("size", SIZE)):
        for value, forms in table.items():
            out.update({form: (attr, value) for form in forms.values()})
    for value, noun in NOUN.items():
        out.update({noun: ("shape", value), noun + "s": ("shape", value)})
    out.update({"circulo": ("shape", "circle"), "triangulo": ("shape", "triangle")})  # without accents
    out.update({
        "esquerda": ("position", "left"), "esquerdo": ("position", "left"),
        "direita": ("position", "right"), "direito": ("position", "right"),
        "cima": ("position", "top"), "superior": ("position", "top"), "alto": ("position", "top"),
        "embaixo": ("position", "bottom"), "baixo": ("position", "bottom"), "inferior": ("position", "bottom"),
    })
    numbers = {"um": "1", "uma": "1", "único": "1", "única": "1", "dois": "2", "duas": "2", "três": "3",
               "tres": "3", "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon(
    "pt",
    _entries(),
    boundaries=("e", ",", ";", ".", ":", "!", "?"),
    weak_numbers=("um", "uma"),
)

FUNCTION_WORDS = frozenset(
    "há a o à imagem mostra contém vemos em na da do lado parte figura figuras forma formas objeto objetos "
    "de é está fica onde que qual cor quantas se vê veem".split()
)
