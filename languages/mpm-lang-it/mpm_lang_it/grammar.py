"""The toy world in Italian: adjective position, agreement, articulated prepositions.

- Position: the size adjective (piccolo, grande) goes before the noun, the
  colour after it: ``un piccolo cerchio rosso``.
- Agreement in gender and number: the shapes (cerchio, quadrato, triangolo)
  are masculine; ``figura`` and ``forma`` are feminine, so ``una piccola
  figura rossa a forma di cerchio``, ``è una figura gialla``; ``verde`` and
  ``grande`` have one singular form for both genders, ``blu`` never changes.
- Number agreement of the existential verb and of the passive ``si``:
  ``c'è un cerchio`` / ``ci sono un cerchio e un quadrato``; ``si vede`` /
  ``si vedono``; ``una sola figura`` / ``due figure``.
- Articulated prepositions and elision: ``del cerchio`` (di + il),
  ``nella parte superiore`` (in + la), ``sulla sinistra`` (su + la),
  ``dell'immagine``, ``c'è``, ``dov'è``.
"""

from __future__ import annotations

from mpm_framework.text.toy_lexicon import ToyLexicon

NOUN = {"circle": "cerchio", "square": "quadrato", "triangle": "triangolo"}
PLURAL = {"circle": "cerchi", "square": "quadrati", "triangle": "triangoli"}
GENDER = {"circle": "m", "square": "m", "triangle": "m"}
# COLOR[value][gender + number]
COLOR = {
    "red": {"ms": "rosso", "fs": "rossa", "mp": "rossi", "fp": "rosse"},
    "green": {"ms": "verde", "fs": "verde", "mp": "verdi", "fp": "verdi"},
    "blue": {"ms": "blu", "fs": "blu", "mp": "blu", "fp": "blu"},
    "yellow": {"ms": "giallo", "fs": "gialla", "mp": "gialli", "fp": "gialle"},
}
SIZE = {
    "small": {"ms": "piccolo", "fs": "piccola", "mp": "piccoli", "fp": "piccole"},
    "large": {"ms": "grande", "fs": "grande", "mp": "grandi", "fp": "grandi"},
}
ARTICLE = {"m": "un", "f": "una"}
DEFINITE = {"m": "il", "f": "la"}
OF_THE = {"m": "del", "f": "della"}  # di + il / di + la
NUMBER = {"2": "due", "3": "tre"}
POSITION = {
    "left": ("a sinistra", "sulla sinistra"),
    "right": ("a destra", "sulla destra"),
    "top": ("in alto", "nella parte superiore"),
    "bottom": ("in basso", "nella parte inferiore"),
}


def noun_phrase(color: str, shape: str, size: str) -> str:
    """``un piccolo cerchio rosso``: size before, colour after the (masculine) noun."""
    g = GENDER[shape] + "s"
    return f"{ARTICLE[GENDER[shape]]} {SIZE[size][g]} {NOUN[shape]} {COLOR[color][g]}"


def figure_phrase(color: str, shape: str, size: str) -> str:
    """``una piccola figura rossa a forma di cerchio``: the adjectives agree with ``figura``."""
    return f"una {SIZE[size]['fs']} figura {COLOR[color]['fs']} a forma di {NOUN[shape]}"


def definite(shape: str) -> str:
    """``il cerchio``."""
    return f"{DEFINITE[GENDER[shape]]} {NOUN[shape]}"


def of_the(shape: str) -> str:
    """``del cerchio`` (di + il contracts)."""
    return f"{OF_THE[GENDER[shape]]} {NOUN[shape]}"


def count_noun(n: int) -> str:
    """``una sola figura`` / ``due figure``."""
    return "una sola figura" if n == 1 else f"{NUMBER[str(n)]} figure"


def there_is(n: int) -> str:
    """``c'è`` for one thing, ``ci sono`` for several (also for coordinated singulars)."""
    return "c'è" if n == 1 else "ci sono"


def one_sees(n: int) -> str:
    """The passive ``si`` agrees with its subject: ``si vede`` / ``si vedono``."""
    return "si vede" if n == 1 else "si vedono"


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for attr, table in (("color", COLOR), ("size", SIZE)):
        for value, forms in table.items():
            out.update({form: (attr, value) for form in forms.values()})
    for value in NOUN:
        out.update({NOUN[value]: ("shape", value), PLURAL[value]: ("shape", value)})
    out.update({
        "sinistra": ("position", "left"), "destra": ("position", "right"),
        "alto": ("position", "top"), "superiore": ("position", "top"), "sopra": ("position", "top"),
        "basso": ("position", "bottom"), "inferiore": ("position", "bottom"), "sotto": ("position", "bottom"),
    })
    numbers = {"un": "1", "una": "1", "uno": "1", "sola": "1", "solo": "1", "unica": "1", "unico": "1",
               "due": "2", "tre": "3", "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon(
    "it",
    _entries(),
    boundaries=("e", ",", ";", ".", ":", "!", "?"),
    weak_numbers=("un", "una"),
)

FUNCTION_WORDS = frozenset(
    "c' è ci sono l' immagine mostra si vede vedono a in di sulla nella parte forma forme figura figure "
    "il la del dell' nell' dov' dove trova che colore qual quale quante".split()
)
