"""The Italian pack: identity, prompts, phrases and toy-world realisation."""

from __future__ import annotations

import random

from mpm_framework.contracts.language import CalibrationPair
from mpm_framework.text.pack_base import BaseLanguagePack
from mpm_framework.toyworld.scene import Obj, Question, Scene

from . import grammar as g


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " e " + items[-1]


class ItalianPack(BaseLanguagePack):
    code = "it"
    name = "Italian"
    native_name = "Italiano"
    script = "Latn"
    lingua_name = "ITALIAN"
    caption_prompts = (
        "Descrivi l'immagine.",
        "Che cosa c'è in questa immagine?",
        "Scrivi una breve didascalia per l'immagine.",
        "Descrivi brevemente quello che vedi.",
        "Descrivi l'immagine in una frase.",
    )
    instruction_templates = (
        "{question}",
        "Guarda l'immagine e rispondi: {question}",
        "{question} Rispondi brevemente.",
        "Ecco un'immagine. {question}",
    )
    phrases = {
        "user": "Utente",
        "assistant": "Assistente",
        "system": "Sei un assistente disponibile. Guardi le immagini e rispondi in italiano alle domande "
                  "che le riguardano.",
        "image": "Immagine",
        "answer_in_language": "Rispondi in italiano, per favore.",
        "paint_prompt": "Dipingi: ",
        "paint_saved": "Immagine salvata in {path}.",
        "chat_welcome": "Conversazione su {image}. Fai una domanda sull'immagine.",
        "chat_exit_hint": "Scrivi 'exit' o premi Ctrl-D per uscire.",
        "chat_goodbye": "Arrivederci!",
    }
    lexicon = g.LEXICON
    function_words = g.FUNCTION_WORDS
    caption_templates = ("c-e", "immagine-mostra", "position-first", "count-first", "figura", "si-vede")

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
        objs, n = scene.objects, scene.count
        located = [f"{self._np(o)} {self._pos(o.position, rng)}" for o in objs]
        if t == "c-e":  # c'è / ci sono agrees with the (coordinated) subject
            text = f"{g.there_is(n)} " + _join(located)
        elif t == "immagine-mostra":
            text = "l'immagine mostra " + _join(located)
        elif t == "position-first":  # one clause per object: always c'è
            text = "; ".join(f"{self._pos(o.position, rng)} c'è {self._np(o)}" for o in objs)
        elif t == "count-first":
            text = f"{g.there_is(n)} {g.count_noun(n)}: " + _join(located)
        elif t == "figura":  # the feminine noun carries the agreement
            text = f"{g.there_is(n)} " + _join(
                [f"{g.figure_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}" for o in objs])
        else:  # si-vede: the passive si agrees in number
            text = f"{g.one_sees(n)} " + _join(located)
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("Quante figure ci sono?", "Quante forme si vedono nell'immagine?",
                               "Quante figure ci sono nell'immagine?"))
        assert q.target is not None
        the = g.definite(q.target.shape)
        if q.kind == "color":
            options = (f"Di che colore è {the}?", f"Qual è il colore {g.of_the(q.target.shape)}?",
                       f"{_cap(the)} di che colore è?")
        elif q.kind == "position":
            options = (f"Dov'è {the}?", f"Dove si trova {the}?", f"In quale parte dell'immagine si trova {the}?")
        else:
            pos = self._pos(q.target.position, rng)
            options = (f"Quale forma c'è {pos}?", f"Che figura si vede {pos}?", f"Qual è la forma {pos}?")
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            short = "Una." if n == 1 else _cap(g.NUMBER[q.answer]) + "."  # "Una." agrees with "figura"
            return rng.choice((short, f"{n}.", f"{_cap(g.there_is(n))} {g.count_noun(n)}."))
        assert q.target is not None
        the = g.definite(q.target.shape)
        if q.kind == "position":
            pos = self._pos(q.answer, rng)
            return rng.choice((f"{_cap(pos)}.", f"Si trova {pos}.", f"{_cap(the)} è {pos}."))
        if q.kind == "shape":
            a = f"{g.ARTICLE[g.GENDER[q.answer]]} {g.NOUN[q.answer]}"
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"{_cap(a)}.", f"È {a}.", f"{_cap(pos)} c'è {a}."))
        color = g.COLOR[q.answer]
        return rng.choice((f"{_cap(color['ms'])}.", f"È {color['ms']}.", f"{_cap(the)} è {color['ms']}.",
                           f"È una figura {color['fs']}."))
