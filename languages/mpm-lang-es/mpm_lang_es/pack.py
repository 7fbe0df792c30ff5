"""The Spanish pack: identity, prompts, phrases and toy-world realisation.

Promoted from the former worked example ``examples/mpm-lang-xx`` (the
template is now ``examples/mpm-lang-minimal``); the grammar moved to
``grammar.py`` and gained the passive ``se`` and the masculine ``objeto``
count.
"""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.toyworld.scene import Obj, Question, Scene

from . import grammar as g


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
        "Describe la imagen en una frase.",
    )
    instruction_templates = ("{question}", "Mira la imagen y responde: {question}", "{question} Responde brevemente.",
                             "Aquí tienes una imagen. {question}")
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
    lexicon = g.LEXICON
    function_words = g.FUNCTION_WORDS
    caption_templates = ("hay", "imagen-muestra", "position-first", "count-first", "figura", "se-ve", "objetos")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in PAIRS]

    # -- toy world -------------------------------------------------------------
    def _pos(self, position: str, rng: random.Random) -> str:
        return rng.choice(g.POSITION[position])

    def _np(self, o: Obj) -> str:
        return g.noun_phrase(o.color, o.shape, o.size)

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs, n = scene.objects, scene.count
        located = _join([f"{self._np(o)} {self._pos(o.position, rng)}" for o in objs])
        if t == "hay":
            text = "hay " + located
        elif t == "imagen-muestra":
            text = "la imagen muestra " + located
        elif t == "position-first":
            text = "; ".join(f"{self._pos(o.position, rng)} hay {self._np(o)}" for o in objs)
        elif t == "count-first":
            text = f"hay {g.count_noun(n)}: " + located
        elif t == "figura":
            text = "hay " + _join([f"{g.figure_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}"
                                   for o in objs])
        elif t == "se-ve":
            text = f"{g.one_sees(n)} " + located
        else:  # objetos: the masculine noun, "un solo objeto" / "dos objetos"
            text = f"la imagen contiene {g.count_noun(n, 'objeto')}: " + located
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("¿Cuántas figuras hay?", "¿Cuántas formas se ven en la imagen?",
                               "¿Cuántas figuras hay en la imagen?"))
        assert q.target is not None
        noun = g.NOUN[q.target.shape]
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
            return rng.choice((_cap(g.NUMBER[q.answer]) + ".", f"{n}.", f"Hay {g.count_noun(n)}."))
        assert q.target is not None
        noun = g.NOUN[q.target.shape]
        if q.kind == "position":  # estar: location
            pos = self._pos(q.answer, rng)
            return rng.choice((_cap(pos) + ".", f"Está {pos}.", f"El {noun} está {pos}."))
        if q.kind == "shape":
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"Un {g.NOUN[q.answer]}.", f"Es un {g.NOUN[q.answer]}.",
                               f"{_cap(pos)} hay un {g.NOUN[q.answer]}."))
        color = g.COLOR[q.answer]  # ser: a property; agreement with the masculine shape or with "figura"
        return rng.choice((_cap(color["ms"]) + ".", f"Es {color['ms']}.", f"El {noun} es {color['ms']}.",
                           f"Es una figura {color['fs']}."))
