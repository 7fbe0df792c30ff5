"""The Spanish pack — identity, prompts, phrases and the toy world in one file.

Grammar the toy world exercises:

- Adjectives follow the noun and agree with it in gender and number: the
  shapes are masculine (``un círculo rojo pequeño``); ``figura`` is feminine
  (``una figura roja pequeña en forma de círculo``); ``verde``, ``azul`` and
  ``grande`` have one form for both genders.
- ``ser`` for what a thing is (``es rojo``), ``estar`` for where it is
  (``está a la izquierda``).
- Counting agrees with the feminine ``figura``: ``¿Cuántas figuras hay?`` —
  ``Una.`` / ``Dos figuras.``
"""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.text.toy_lexicon import ToyLexicon
from mpm_framework.toyworld.scene import Obj, Question, Scene

NOUN = {"circle": "círculo", "square": "cuadrado", "triangle": "triángulo"}  # all masculine
# FORMS[value][gender + number]: m/f, s/p
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


def noun_phrase(color: str, shape: str, size: str) -> str:
    """``un círculo rojo pequeño``: noun, then colour, then size, all masculine singular."""
    return f"un {NOUN[shape]} {COLOR[color]['ms']} {SIZE[size]['ms']}"


def figure_phrase(color: str, shape: str, size: str) -> str:
    """``una figura roja pequeña en forma de círculo``: the adjectives agree with ``figura``."""
    return f"una figura {COLOR[color]['fs']} {SIZE[size]['fs']} en forma de {NOUN[shape]}"


def count_noun(n: int) -> str:
    return "una sola figura" if n == 1 else f"{NUMBER[str(n)]} figuras"


def _entries() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for attr, table in (("color", COLOR), ("size", SIZE)):
        for value, forms in table.items():
            out.update({form: (attr, value) for form in forms.values()})
    for value, noun in NOUN.items():
        out.update({noun: ("shape", value), noun + "s": ("shape", value)})
    out.update({"izquierda": ("position", "left"), "derecha": ("position", "right"),
                "arriba": ("position", "top"), "superior": ("position", "top"),
                "abajo": ("position", "bottom"), "inferior": ("position", "bottom")})
    numbers = {"un": "1", "una": "1", "uno": "1", "sola": "1", "solo": "1", "dos": "2", "tres": "3",
               "1": "1", "2": "2", "3": "3"}
    out.update({w: ("count", n) for w, n in numbers.items()})
    return out


LEXICON = ToyLexicon("es", _entries(), boundaries=("y", ",", ";", ".", ":", "¿", "?", "¡", "!"),
                     weak_numbers=("un", "una"))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " y " + items[-1]


class SpanishPack(BaseLanguagePack):
    code = "es"
    name = "Spanish"
    native_name = "Español"
    script = "Latn"
    lingua_name = "SPANISH"
    caption_prompts = (
        "Describe la imagen.",
        "¿Qué hay en esta imagen?",
        "Escribe un pie de foto breve para la imagen.",
        "Describe brevemente lo que ves.",
    )
    instruction_templates = ("{question}", "Mira la imagen y responde: {question}", "{question} Responde brevemente.")
    phrases = {
        "user": "Usuario",
        "assistant": "Asistente",
        "system": "Eres un asistente servicial. Miras imágenes y respondes en español a preguntas sobre ellas.",
        "image": "Imagen",
        "answer_in_language": "Responde en español, por favor.",
        "paint_prompt": "Pinta: ",
        "paint_saved": "Imagen guardada en {path}.",
        "chat_welcome": "Conversación sobre {image}. Haz una pregunta sobre la imagen.",
        "chat_exit_hint": "Escribe 'exit' o pulsa Ctrl-D para salir.",
        "chat_goodbye": "¡Adiós!",
    }
    lexicon = LEXICON
    function_words = frozenset(
        "hay la el imagen muestra un una a en parte figura figuras forma formas de es está qué color tiene "
        "dónde cuántas se ven ve".split()
    )
    caption_templates = ("hay", "imagen-muestra", "position-first", "count-first", "figura")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in PAIRS]

    def _pos(self, position: str, rng: random.Random) -> str:
        return rng.choice(POSITION[position])

    def _located(self, o: Obj, rng: random.Random) -> str:
        return f"{noun_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}"

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs = scene.objects
        if t == "hay":
            text = "hay " + _join([self._located(o, rng) for o in objs])
        elif t == "imagen-muestra":
            text = "la imagen muestra " + _join([self._located(o, rng) for o in objs])
        elif t == "position-first":
            text = "; ".join(f"{self._pos(o.position, rng)} hay {noun_phrase(o.color, o.shape, o.size)}"
                             for o in objs)
        elif t == "count-first":
            text = f"hay {count_noun(scene.count)}: " + _join([self._located(o, rng) for o in objs])
        else:
            text = "hay " + _join([f"{figure_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}"
                                   for o in objs])
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("¿Cuántas figuras hay?", "¿Cuántas formas se ven en la imagen?"))
        assert q.target is not None
        noun = NOUN[q.target.shape]
        options = {
            "color": (f"¿De qué color es el {noun}?", f"¿Qué color tiene el {noun}?"),
            "position": (f"¿Dónde está el {noun}?", f"¿En qué parte de la imagen está el {noun}?"),
            "shape": (f"¿Qué figura hay {self._pos(q.target.position, rng)}?",
                      f"¿Qué forma se ve {self._pos(q.target.position, rng)}?"),
        }[q.kind]
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            return rng.choice((_cap(NUMBER[q.answer]) + ".", f"{n}.", f"Hay {count_noun(n)}."))
        assert q.target is not None
        noun = NOUN[q.target.shape]
        if q.kind == "position":  # estar: location
            pos = self._pos(q.answer, rng)
            return rng.choice((_cap(pos) + ".", f"Está {pos}.", f"El {noun} está {pos}."))
        if q.kind == "shape":
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"Un {NOUN[q.answer]}.", f"Es un {NOUN[q.answer]}.",
                               f"{_cap(pos)} hay un {NOUN[q.answer]}."))
        color = COLOR[q.answer]  # ser: a property; agreement with the masculine shape or with "figura"
        return rng.choice((_cap(color["ms"]) + ".", f"Es {color['ms']}.", f"El {noun} es {color['ms']}.",
                           f"Es una figura {color['fs']}."))
