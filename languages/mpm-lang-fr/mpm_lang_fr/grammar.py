"""The toy world in French: adjective position and agreement.

- Position: size adjectives (petit, grand) come before the noun, colour
  adjectives after it: ``un petit cercle rouge``, ``une grande figure bleue``.
- Agreement in gender and number: the shapes (cercle, carré, triangle) are
  masculine; ``figure`` and ``forme`` are feminine, so ``une petite figure
  verte en forme de triangle``, ``c'est une forme bleue``, ``deux formes``.
  ``rouge`` and ``jaune`` do not change in the feminine.
- Contraction and elision: ``la couleur du cercle`` (de + le), ``l'image``.
"""

from __future__ import annotations

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "cercle", "square": "carré", "triangle": "triangle"}
GENDER = {"circle": "m", "square": "m", "triangle": "m"}
# COLOR[value][gender + number]
COLOR = {
    "red": {"ms": "rouge", "fs": "rouge", "mp": "rouges", "fp": "rouges"},
    "green": {"ms": "vert", "fs": "verte", "mp": "verts", "fp": "vertes"},
    "blue": {"ms": "bleu", "fs": "bleue", "mp": "bleus", "fp": "bleues"},
    "yellow": {"ms": "jaune", "fs": "jaune", "mp": "jaunes", "fp": "jaunes"},
}
SIZE = {
    "small": {"ms": "petit", "fs": "petite", "mp": "petits", "fp": "petites"},
    "large": {"ms": "grand", "fs": "grande", "mp": "grands", "fp": "grandes"},
}
ARTICLE = {"m": "un", "f": "une"}
DEFINITE = {"m": "le", "f": "la"}
NUMBER = {"2": "deux", "3": "trois"}
POSITION = {
    "left": ("à gauche", "sur la gauche"),
    "right": ("à droite", "sur la droite"),
    "top": ("en haut", "dans la partie supérieure"),
    "bottom": ("en bas", "dans la partie inférieure"),
}


def noun_phrase(color: str, shape: str, size: str) -> str:
    """``un petit cercle rouge``: size before, colour after the (masculine) noun."""
    g = GENDER[shape] + "s"
    return f"{ARTICLE[GENDER[shape]]} {SIZE[size][g]} {NOUN[shape]} {COLOR[color][g]}"


def figure_phrase(color: str, shape: str, size: str) -> str:
    """``une petite figure verte en forme de cercle``: the feminine noun ``figure`` agrees."""
    return f"une {SIZE[size]['fs']} figure {COLOR[color]['fs']} en forme de {NOUN[shape]}"


def of_the(shape: str) -> str:
    """``du cercle`` (de + le contracts; de + la does not)."""
    return ("du " if GENDER[shape] == "m" else "de la ") + NOUN[shape]


def count_noun(n: int) -> str:
    """``une seule forme`` / ``deux formes``."""
    return "une seule forme" if n == 1 else f"{NUMBER[str(n)]} formes"


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for value, forms in COLOR.items():
        out.update({f: ("color", value) for f in forms.values()})
    for value, forms in SIZE.items():
        out.update({f: ("size", value) for f in forms.values()})
    for value, noun in NOUN.items():
        out.update({noun: ("shape", value), noun + "s": ("shape", value)})
    out.update({"carre": ("shape", "square"), "carres": ("shape", "square"), "rond": ("shape", "circle")})
    out.update({
        "gauche": ("position", "left"), "droite": ("position", "right"),
        "haut": ("position", "top"), "supérieure": ("position", "top"), "supérieur": ("position", "top"),
        "bas": ("position", "bottom"), "inférieure": ("position", "bottom"), "inférieur": ("position", "bottom"),
    })
    numbers = {"un": "1", "une": "1", "seul": "1", "seule": "1", "deux": "2", "trois": "3",
               "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon(
    "fr",
    _entries(),
    boundaries=("et", ",", ";", ".", ":", "!", "?"),
    weak_numbers=("un", "une"),
)

FUNCTION_WORDS = frozenset(
    "il y a l' image montre on voit à en sur la le dans partie de figure figures forme formes c' est "
    "se trouve quelle quel couleur du où combien -t-il -on".split()
)
