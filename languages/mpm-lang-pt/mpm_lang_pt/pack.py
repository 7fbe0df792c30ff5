"""The Portuguese pack (Brazilian Portuguese): identity, prompts, phrases and toy-world realisation."""

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


class PortuguesePack(BaseLanguagePack):
    code = "pt"
    name = "Portuguese"
    native_name = "Português"
    script = "Latn"
    lingua_name = "PORTUGUESE"
    caption_prompts = (
        "Descreva a imagem.",
        "O que há nesta imagem?",
        "Escreva uma legenda curta para a imagem.",
        "Descreva brevemente o que você vê.",
        "Descreva a imagem em uma frase.",
    )
    instruction_templates = (
        "{question}",
        "Olhe a imagem e responda: {question}",
        "{question} Responda brevemente.",
        "Aqui está uma imagem. {question}",
    )
    phrases = {
        "user": "Usuário",
        "assistant": "Assistente",
        "system": "Você é um assistente prestativo. Você olha imagens e responde em português a perguntas "
                  "sobre elas.",
        "image": "Imagem",
        "answer_in_language": "Responda em português, por favor.",
        "paint_prompt": "Pinte: ",
        "paint_saved": "Imagem salva em {path}.",
        "chat_welcome": "Conversa sobre {image}. Faça uma pergunta sobre a imagem.",
        "chat_exit_hint": "Digite 'exit' ou pressione Ctrl-D para sair.",
        "chat_goodbye": "Até logo!",
    }
    lexicon = g.LEXICON
    function_words = g.FUNCTION_WORDS
    caption_templates = ("ha", "imagem-mostra", "position-first", "count-first", "figura", "vemos", "objetos")

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
        located = _join([f"{self._np(o)} {self._pos(o.position, rng)}" for o in objs])
        if t == "ha":
            text = "há " + located
        elif t == "imagem-mostra":
            text = "a imagem mostra " + located
        elif t == "position-first":
            text = "; ".join(f"{self._pos(o.position, rng)} há {self._np(o)}" for o in objs)
        elif t == "count-first":  # the feminine "figura": uma única figura / duas figuras
            text = f"há {g.count_noun(n)}: " + located
        elif t == "figura":
            text = "há " + _join([f"{g.figure_phrase(o.color, o.shape, o.size)} {self._pos(o.position, rng)}"
                                  for o in objs])
        elif t == "vemos":
            text = "vemos " + located
        else:  # objetos: the masculine "objeto": um único objeto / dois objetos
            text = f"a imagem contém {g.count_noun(n, 'objeto')}: " + located
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("Quantas figuras há?", "Quantas formas se veem na imagem?",
                               "Quantas figuras há na imagem?"))
        assert q.target is not None
        the = g.definite(q.target.shape)
        if q.kind == "color":
            options = (f"De que cor é {the}?", f"Qual é a cor {g.of_the(q.target.shape)}?",
                       f"{_cap(the)} é de que cor?")
        elif q.kind == "position":
            options = (f"Onde está {the}?", f"Onde fica {the}?", f"Em que parte da imagem está {the}?")
        else:
            pos = self._pos(q.target.position, rng)
            options = (f"Que forma há {pos}?", f"Que figura se vê {pos}?", f"Qual é a figura {pos}?")
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = int(q.answer)
            short = _cap(g.NUMBER["f"][q.answer]) + "."  # "Duas." agrees with "figuras"
            return rng.choice((short, f"{n}.", f"Há {g.count_noun(n)}.", f"Há {g.count_noun(n, 'objeto')}."))
        assert q.target is not None
        the = g.definite(q.target.shape)
        if q.kind == "position":  # estar / ficar: location
            pos = self._pos(q.answer, rng)
            return rng.choice((f"{_cap(pos)}.", f"Está {pos}.", f"{_cap(the)} está {pos}.", f"Fica {pos}."))
        if q.kind == "shape":
            a = f"{g.ARTICLE[g.GENDER[q.answer]]} {g.NOUN[q.answer]}"
            pos = self._pos(q.target.position, rng)
            return rng.choice((f"{_cap(a)}.", f"É {a}.", f"{_cap(pos)} há {a}."))
        color = g.COLOR[q.answer]  # ser: a property
        return rng.choice((f"{_cap(color['ms'])}.", f"É {color['ms']}.", f"{_cap(the)} é {color['ms']}.",
                           f"É uma figura {color['fs']}."))
