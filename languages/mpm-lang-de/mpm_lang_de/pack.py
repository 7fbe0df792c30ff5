"""The German pack: identity, prompts, phrases and toy-world realisation."""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.toyworld.scene import Obj, Question, Scene

from . import grammar as g


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " und " + items[-1]


class GermanPack(BaseLanguagePack):
    code = "de"
    name = "German"
    native_name = "Deutsch"
    script = "Latn"
    lingua_name = "GERMAN"
    caption_prompts = (
        "Beschreibe das Bild.",
        "Was ist auf diesem Bild zu sehen?",
        "Schreibe eine kurze Bildunterschrift.",
        "Beschreibe kurz, was du siehst.",
        "Beschreibe das Bild in einem Satz.",
    )
    instruction_templates = (
        "{question}",
        "Sieh dir das Bild an und antworte: {question}",
        "{question} Antworte kurz.",
        "Hier ist ein Bild. {question}",
    )
    phrases = {
        "user": "Nutzer",
        "assistant": "Assistent",
        "system": "Du bist ein hilfsbereiter Assistent. Du siehst dir Bilder an und beantwortest Fragen "
                  "dazu auf Deutsch.",
        "image": "Bild",
        "answer_in_language": "Bitte antworte auf Deutsch.",
        "paint_prompt": "Male: ",
        "paint_saved": "Das Bild wurde unter {path} gespeichert.",
        "chat_welcome": "Unterhaltung über {image}. Stelle eine Frage zum Bild.",
        "chat_exit_hint": "Tippe 'exit' oder drücke Strg-D, um das Gespräch zu beenden.",
        "chat_goodbye": "Auf Wiedersehen!",
    }
    lexicon = g.LEXICON
    function_words = g.FUNCTION_WORDS
    caption_templates = ("position-first", "es-gibt", "bild-zeigt", "bild-mit", "befindet-sich",
                         "count-first", "ich-sehe")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in PAIRS]

    # -- toy world -------------------------------------------------------------
    def _np(self, o: Obj, case: str) -> str:
        return g.noun_phrase(o.color, o.shape, o.size, case)

    def _pos(self, position: str, rng: random.Random) -> str:
        return rng.choice(g.POSITION[position])

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs = scene.objects
        if t == "position-first":  # adverbial first, verb second, then the nominative subject
            text = _join([f"{self._pos(o.position, rng)} ist {self._np(o, 'nom')}" for o in objs])
        elif t in ("es-gibt", "bild-zeigt", "ich-sehe"):  # accusative objects
            head = {"es-gibt": "es gibt", "bild-zeigt": "das Bild zeigt", "ich-sehe": "ich sehe"}[t]
            text = head + " " + _join([f"{self._np(o, 'acc')} {self._pos(o.position, rng)}" for o in objs])
        elif t == "bild-mit":  # dative after "mit"
            text = "ein Bild mit " + _join([f"{self._np(o, 'dat')} {self._pos(o.position, rng)}" for o in objs])
        elif t == "befindet-sich":  # one sentence per object
            return " ".join(_cap(f"{self._np(o, 'nom')} befindet sich {self._pos(o.position, rng)}.")
                            for o in objs)
        else:  # count-first: "ist eine Form" / "sind zwei Formen"
            verb = "ist" if scene.count == 1 else "sind"
            text = (f"auf dem Bild {verb} {g.count_noun(scene.count)}: "
                    + _join([f"{self._np(o, 'nom')} {self._pos(o.position, rng)}" for o in objs]))
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("Wie viele Formen gibt es?", "Wie viele Figuren sind auf dem Bild?",
                               "Wie viele Formen siehst du?"))
        assert q.target is not None
        shape = q.target.shape
        the = g.definite(shape)
        options = {
            "color": (f"Welche Farbe hat {the}?", f"Wie ist die Farbe des {g.GENITIVE[shape]}?",
                      f"Welche Farbe hat {the} auf dem Bild?"),
            "position": (f"Wo ist {the}?", f"Wo befindet sich {the}?",
                         f"In welchem Teil des Bildes ist {the}?"),
            "shape": tuple(f"{frame} {self._pos(q.target.position, rng)}?"
                           for frame in ("Welche Form ist", "Welche Form siehst du", "Was für eine Form ist")),
        }[q.kind]
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            word = "Eine" if n == 1 else _cap(g.NUMBER[q.answer])  # "Eine." agrees with "Form"
            verb = "ist" if n == 1 else "sind"
            return rng.choice((f"{word}.", f"{n}.", f"Es gibt {g.count_noun(n)}.",
                               f"Auf dem Bild {verb} {g.count_noun(n)}."))
        assert q.target is not None
        shape = q.target.shape
        pronoun = _cap(g.PRONOUN[g.GENDER[shape]])  # Er (der Kreis) / Es (das Dreieck)
        the = _cap(g.definite(shape))
        if q.kind == "position":
            pos = self._pos(q.answer, rng)
            return rng.choice((f"{_cap(pos)}.", f"{pronoun} ist {pos}.", f"{the} befindet sich {pos}."))
        if q.kind == "shape":
            a = g.indefinite(q.answer)
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"{_cap(a)}.", f"Das ist {a}.", f"{_cap(pos)} ist {a}."))
        color = g.COLOR[q.answer]
        return rng.choice((f"{_cap(color)}.", f"{pronoun} ist {color}.", f"{the} ist {color}."))
