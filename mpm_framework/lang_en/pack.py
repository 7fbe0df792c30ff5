"""The English pack: the pivot language's prompts and toy-world grammar."""

from __future__ import annotations

import random
import re

from ..contracts.language import CalibrationPair, LanguagePack
from ..toyworld.scene import COLORS, POSITIONS, SHAPES, SIZES, ObjectSpec, Question, Scene

_POS_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
_NUMBERS = {"1": "one", "2": "two"}
_WORD = re.compile(r"[a-z0-9]+")


class EnglishPack(LanguagePack):
    code = "en"
    name = "English"
    native_name = "English"
    script = "Latn"
    lingua_name = "ENGLISH"
    caption_prompts = (
        "Describe the image.",
        "What is in this picture?",
        "Write a short caption for the image.",
        "Briefly describe what you see.",
    )
    phrases = {"user": "User", "assistant": "Assistant", "paint_prompt": "Paint: "}

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q, a) for q, a in PAIRS]

    def tokenize(self, text: str) -> list[str]:
        return re.findall(r"\w+|[^\w\s]", text.lower())

    # -- toy world -------------------------------------------------------------
    def _noun_phrase(self, obj, rng: random.Random) -> str:
        return f"a {obj.size} {obj.color} {obj.shape} {_POS_PHRASE[obj.position]}"

    def realise_caption(self, scene: Scene, rng: random.Random) -> str:
        parts = [self._noun_phrase(o, rng) for o in scene.objects]
        body = " and ".join(parts)
        template = rng.choice(("{}", "there is {}", "the image shows {}", "i can see {}"))
        text = template.format(body)
        return text[0].upper() + text[1:] + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("How many shapes are there?", "How many objects are in the image?"))
        assert q.target is not None
        shape, pos = q.target.shape, _POS_PHRASE[q.target.position]
        options = {
            "color": (f"What color is the {shape}?", f"Which color does the {shape} have?"),
            "position": (f"Where is the {shape}?", f"In which part of the image is the {shape}?"),
            "shape": (f"What shape is {pos}?", f"Which shape can you see {pos}?"),
        }[q.kind]
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice((_NUMBERS[q.answer], q.answer)).capitalize() + "."
        if q.kind == "position":
            return f"It is {_POS_PHRASE[q.answer]}."
        if q.kind == "shape":
            return f"A {q.answer}."
        return rng.choice((f"It is {q.answer}.", f"{q.answer.capitalize()}."))

    def parse_caption(self, text: str) -> list[ObjectSpec]:
        objects = []
        for chunk in re.split(r"\band\b", text.lower()):
            words = _WORD.findall(chunk)
            spec = ObjectSpec(
                color=next((w for w in words if w in COLORS), None),
                shape=next((w for w in words if w in SHAPES), None),
                size=next((w for w in words if w in SIZES), None),
                position=next((w for w in words if w in POSITIONS), None),
            )
            if spec != ObjectSpec():
                objects.append(spec)
        return objects

    def parse_answer(self, text: str, kind: str) -> str | None:
        words = _WORD.findall(text.lower())
        vocab = {"color": COLORS, "shape": SHAPES, "position": POSITIONS, "size": SIZES}.get(kind)
        if kind == "count":
            lookup = {v: k for k, v in _NUMBERS.items()} | {k: k for k in _NUMBERS}
            return next((lookup[w] for w in words if w in lookup), None)
        return next((w for w in words if vocab and w in vocab), None)
