"""The French pack: identity, prompts, phrases and toy-world realisation."""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.toyworld.scene import Obj, Question, Scene

from . import grammar as g


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " et " + items[-1]


class FrenchPack(BaseLanguagePack):
    code = "fr"
    name = "French"
    native_name = "Français"
    script = "Latn"
    lingua_name = "FRENCH"
    caption_prompts = (
        "Décris l'image.",
        "Qu'y a-t-il sur cette image ?",
        "Écris une courte légende pour l'image.",
        "Décris brièvement ce que tu vois.",
        "Décris l'image en une phrase.",
    )
    instruction_templates = (
        "{question}",
        "Regarde l'image et réponds : {question}",
        "{question} Réponds brièvement.",
        "Voici une image. {question}",
    )
    phrases = {
        "user": "Utilisateur",
        "assistant": "Assistant",
        "system": "Tu es un assistant serviable. Tu regardes des images et tu réponds en français aux "
                  "questions qui les concernent.",
        "image": "Image",
        "answer_in_language": "Réponds en français, s'il te plaît.",
        "paint_prompt": "Peins : ",
        "paint_saved": "Image enregistrée dans {path}.",
        "chat_welcome": "Discussion à propos de {image}. Pose une question sur l'image.",
        "chat_exit_hint": "Tape « exit » ou appuie sur Ctrl-D pour quitter.",
        "chat_goodbye": "Au revoir !",
    }
    lexicon = g.LEXICON
    function_words = g.FUNCTION_WORDS
    caption_templates = ("bare", "il-y-a", "image-montre", "on-voit", "position-first", "count-first",
                         "figure")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q_en, a_en) for q_en, a_en, q, a in PAIRS]

    # -- toy world -------------------------------------------------------------
    def _np(self, o: Obj) -> str:
        return g.noun_phrase(o.color, o.shape, o.size)

    def _pos(self, position: str, rng: random.Random) -> str:
        return rng.choice(g.POSITION[position])

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs = scene.objects
        located = [f"{self._np(o)} {self._pos(o.position, rng)}" for o in objs]
        if t == "bare":
            text = _join(located)
        elif t == "il-y-a":
            text = "il y a " + _join(located)
        elif t == "image-montre":
            text = "l'image montre " + _join(located)
        elif t == "on-voit":
            text = "on voit " + _join(located)
        elif t == "position-first":
            text = " ; ".join(f"{self._pos(o.position, rng)}, il y a {self._np(o)}" for o in objs)
        elif t == "count-first":
            text = f"il y a {g.count_noun(scene.count)} : " + _join(located)
        else:  # figure: the feminine noun carries the agreement
            text = "il y a " + _join([f"{g.figure_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}"
                                      for o in objs])
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("Combien de formes y a-t-il ?", "Combien de formes voit-on sur l'image ?",
                               "Combien y a-t-il de figures ?"))
        assert q.target is not None
        noun = g.NOUN[q.target.shape]
        the = f"{g.DEFINITE[g.GENDER[q.target.shape]]} {noun}"
        if q.kind == "color":
            options = (f"De quelle couleur est {the} ?", f"Quelle est la couleur {g.of_the(q.target.shape)} ?",
                       f"{_cap(the)} est de quelle couleur ?")
        elif q.kind == "position":
            options = (f"Où est {the} ?", f"Où se trouve {the} ?", f"Dans quelle partie de l'image est {the} ?")
        else:
            pos = self._pos(q.target.position, rng)
            options = (f"Quelle forme y a-t-il {pos} ?", f"Quelle forme voit-on {pos} ?",
                       f"Quelle est la forme {pos} ?")
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            short = "Une seule." if n == 1 else _cap(g.NUMBER[q.answer]) + "."
            return rng.choice((short, f"{n}.", f"Il y a {g.count_noun(n)}."))
        assert q.target is not None
        shape = q.target.shape
        the = f"{g.DEFINITE[g.GENDER[shape]]} {g.NOUN[shape]}"
        if q.kind == "position":
            pos = self._pos(q.answer, rng)
            return rng.choice((f"{_cap(pos)}.", f"Il est {pos}.", f"{_cap(the)} se trouve {pos}."))
        if q.kind == "shape":
            a = f"{g.ARTICLE[g.GENDER[q.answer]]} {g.NOUN[q.answer]}"
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"{_cap(a)}.", f"C'est {a}.", f"{_cap(pos)}, il y a {a}."))
        color = g.COLOR[q.answer]
        return rng.choice((f"{_cap(color['ms'])}.", f"Il est {color['ms']}.", f"{_cap(the)} est {color['ms']}.",
                           f"C'est une forme {color['fs']}."))
