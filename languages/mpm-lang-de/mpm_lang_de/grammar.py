"""The toy world in German: declension, agreement, word order.

Adjectives before a noun take their ending from the noun's gender, the case,
and the kind of article before them:

- after the definite article (weak declension): ``der kleine rote Kreis``,
  ``den kleinen roten Kreis``, ``dem kleinen roten Kreis``;
- after the indefinite article (mixed declension): ``ein kleiner roter Kreis``,
  ``ein kleines rotes Dreieck``, ``einen kleinen roten Kreis``, ``einem
  kleinen roten Dreieck``.

The shapes are Kreis (masculine), Quadrat and Dreieck (neuter); Form and
Figur (feminine) count them. Main clauses keep the verb second (``Links ist
ein ...``, ``Oben befindet sich ...``).
"""

from __future__ import annotations

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "Kreis", "square": "Quadrat", "triangle": "Dreieck"}
GENDER = {"circle": "m", "square": "n", "triangle": "n"}
GENITIVE = {"circle": "Kreises", "square": "Quadrats", "triangle": "Dreiecks"}
PRONOUN = {"m": "er", "n": "es", "f": "sie"}
COLOR = {"red": "rot", "green": "grün", "blue": "blau", "yellow": "gelb"}
SIZE = {"small": "klein", "large": "groß"}
NUMBER = {"2": "zwei", "3": "drei"}

CASES = ("nom", "acc", "dat")
ARTICLES = ("indef", "def")

# ARTICLE_FORMS[article][case][gender]
ARTICLE_FORMS = {
    "indef": {"nom": {"m": "ein", "n": "ein", "f": "eine"},
              "acc": {"m": "einen", "n": "ein", "f": "eine"},
              "dat": {"m": "einem", "n": "einem", "f": "einer"}},
    "def": {"nom": {"m": "der", "n": "das", "f": "die"},
            "acc": {"m": "den", "n": "das", "f": "die"},
            "dat": {"m": "dem", "n": "dem", "f": "der"}},
}
# ADJECTIVE_ENDINGS[article][case][gender]: mixed after ein-, weak after der-
ADJECTIVE_ENDINGS = {
    "indef": {"nom": {"m": "er", "n": "es", "f": "e"},
              "acc": {"m": "en", "n": "es", "f": "e"},
              "dat": {"m": "en", "n": "en", "f": "en"}},
    "def": {"nom": {"m": "e", "n": "e", "f": "e"},
            "acc": {"m": "en", "n": "e", "f": "e"},
            "dat": {"m": "en", "n": "en", "f": "en"}},
}

# Adverbs, and prepositional phrases whose adjectives are themselves declined
# (dative feminine "auf der linken Seite", dative masculine "im oberen Bereich").
POSITION = {
    "left": ("links", "auf der linken Seite"),
    "right": ("rechts", "auf der rechten Seite"),
    "top": ("oben", "im oberen Bereich"),
    "bottom": ("unten", "im unteren Bereich"),
}


def count_noun(n: int) -> str:
    """``eine Form`` / ``zwei Formen`` (Form is feminine; plural -en)."""
    return "eine Form" if n == 1 else f"{NUMBER[str(n)]} Formen"


def noun_phrase(color: str, shape: str, size: str, case: str = "nom", article: str = "indef") -> str:
    """``ein kleiner roter Kreis``: article, declined size and colour, noun."""
    if case not in CASES or article not in ARTICLES:
        raise ValueError(f"case must be one of {CASES} and article one of {ARTICLES}")
    gender = GENDER[shape]
    end = ADJECTIVE_ENDINGS[article][case][gender]
    return f"{ARTICLE_FORMS[article][case][gender]} {SIZE[size]}{end} {COLOR[color]}{end} {NOUN[shape]}"


def definite(shape: str, case: str = "nom") -> str:
    """``der Kreis`` / ``das Dreieck``."""
    return f"{ARTICLE_FORMS['def'][case][GENDER[shape]]} {NOUN[shape]}"


def indefinite(shape: str, case: str = "nom") -> str:
    """``ein Kreis`` / ``einen Kreis`` / ``ein Dreieck``."""
    return f"{ARTICLE_FORMS['indef'][case][GENDER[shape]]} {NOUN[shape]}"


def _declined(stem: str) -> list[str]:
    return [stem + e for e in ("", "e", "er", "es", "en", "em")]


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for value, stem in COLOR.items():
        for form in _declined(stem) + _declined(stem.replace("ü", "ue")):
            out[form] = ("color", value)
    for value, stem in SIZE.items():
        for form in _declined(stem) + _declined(stem.replace("ß", "ss")):
            out[form] = ("size", value)
    for value, noun in NOUN.items():
        for form in (noun, noun + "e", noun + "en", GENITIVE[value], noun + "es"):
            out[form] = ("shape", value)
    for value, stems in {"left": ("links", "link"), "right": ("rechts", "recht"),
                         "top": ("oben", "ober"), "bottom": ("unten", "unter")}.items():
        out[stems[0]] = ("position", value)
        for e in ("e", "en", "er", "es", "em"):
            out[stems[1] + e] = ("position", value)
    numbers = {"eins": "1", "ein": "1", "eine": "1", "einen": "1", "einem": "1", "einer": "1",
               "einzige": "1", "einzigen": "1", "zwei": "2", "zwo": "2", "drei": "3", "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon(
    "de",
    _entries(),
    boundaries=("und", "sowie", ",", ";", ".", ":", "!", "?"),
    weak_numbers=("ein", "eine", "einen", "einem", "einer"),
)

FUNCTION_WORDS = frozenset(
    "ist sind es gibt das bild bildes zeigt der die den dem des mit auf seite im bereich befindet sich "
    "ich sehe form formen figur figuren welche welchem farbe hat wie viele wo in teil siehst du was für "
    "er sie ein eine einen einem einer".split()
)
