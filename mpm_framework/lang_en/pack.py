"""The English pack: the pivot language's prompts and toy-world grammar.

English grammar points the realisation gets right: adjective order (size
before colour: "a small red circle"), number agreement ("there is one shape" /
"there are two shapes"), and the article before a consonant ("a").
"""

from __future__ import annotations

import random

from ..contracts.language import CalibrationPair
from ..text.pack_base import BaseLanguagePack
from ..text.toy_lexicon import ToyLexicon
from ..toyworld.scene import Obj, Question, Scene

_POSITION = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "in the upper part"),
    "bottom": ("at the bottom", "in the lower part"),
}
_SIZE = {"small": ("small", "little"), "large": ("large", "big")}
_NUMBER = {"1": "one", "2": "two", "3": "three"}

LEXICON = ToyLexicon(
    "en",
    {
        **{c: ("color", c) for c in ("red", "green", "blue", "yellow")},
        **{s: ("shape", s) for s in ("circle", "square", "triangle")},
        **{s + "s": ("shape", s) for s in ("circle", "square", "triangle")},
        "small": ("size", "small"), "little": ("size", "small"), "tiny": ("size", "small"),
        "large": ("size", "large"), "big": ("size", "large"),
        "left": ("position", "left"), "right": ("position", "right"),
        "top": ("position", "top"), "upper": ("position", "top"),
        "bottom": ("position", "bottom"), "lower": ("position", "bottom"),
        **{w: ("count", n) for n, w in _NUMBER.items()}, **{n: ("count", n) for n in _NUMBER},
        "single": ("count", "1"),
    },
    boundaries=("and", ",", ";", ".", ":", "!", "?"),
)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    """"x", "x and y", "x, y and z"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class EnglishPack(BaseLanguagePack):
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
        "Give a one-sentence description of this image.",
    )
    instruction_templates = (
        "{question}",
        "Look at the image and answer: {question}",
        "{question} Answer briefly.",
        "Here is an image. {question}",
    )
    phrases = {
        "user": "User",
        "assistant": "Assistant",
        "system": "You are a helpful assistant. You look at images and answer questions about them in English.",
        "image": "Image",
        "answer_in_language": "Please answer in English.",
        "paint_prompt": "Paint: ",
        "paint_saved": "Saved the image to {path}.",
        "chat_welcome": "Chatting about {image}. Ask a question about the image.",
        "chat_exit_hint": "Type 'exit' or press Ctrl-D to leave.",
        "chat_goodbye": "Goodbye!",
    }
    lexicon = LEXICON
    function_words = frozenset(
        "a an the is it are there on at in of part side image picture shows i can see you shape shapes "
        "what which where how many color colour does have with object objects".split()
    )
    caption_templates = ("bare", "there-is", "image-shows", "i-see", "position-first", "picture-with",
                         "count-first")

    def calibration(self) -> list[CalibrationPair]:
        from .calibration import PAIRS

        return [CalibrationPair(q, a, q, a) for q, a in PAIRS]

    # -- toy world -------------------------------------------------------------
    def noun_phrase(self, obj: Obj, rng: random.Random) -> str:
        """"a small red circle" (size before colour, as English orders adjectives)."""
        return f"a {rng.choice(_SIZE[obj.size])} {obj.color} {obj.shape}"

    def position_phrase(self, position: str, rng: random.Random) -> str:
        return rng.choice(_POSITION[position])

    def realise_caption(self, scene: Scene, rng: random.Random, template: int | None = None) -> str:
        t = self.caption_templates[rng.randrange(len(self.caption_templates)) if template is None else template]
        objs = scene.objects
        located = [f"{self.noun_phrase(o, rng)} {self.position_phrase(o.position, rng)}" for o in objs]
        if t == "bare":
            text = _join(located)
        elif t == "there-is":
            text = "there is " + _join(located)
        elif t == "image-shows":
            text = "the image shows " + _join(located)
        elif t == "i-see":
            text = "I can see " + _join(located)
        elif t == "position-first":
            text = "; ".join(f"{self.position_phrase(o.position, rng)} there is {self.noun_phrase(o, rng)}"
                             for o in objs)
        elif t == "picture-with":
            text = "a picture with " + _join(located)
        else:  # count-first: number agreement of the verb and the noun
            n = scene.count
            head = "there is one shape" if n == 1 else f"there are {_NUMBER[str(n)]} shapes"
            text = f"{head}: {_join(located)}"
        return _cap(text) + "."

    def realise_question(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            return rng.choice(("How many shapes are there?", "How many objects are in the image?",
                               "How many shapes can you see?"))
        assert q.target is not None
        shape, pos = q.target.shape, self.position_phrase(q.target.position, rng)
        options = {
            "color": (f"What color is the {shape}?", f"Which color does the {shape} have?",
                      f"What is the color of the {shape}?"),
            "position": (f"Where is the {shape}?", f"In which part of the image is the {shape}?",
                         f"Where can you see the {shape}?"),
            "shape": (f"What shape is {pos}?", f"Which shape can you see {pos}?", f"What is the shape {pos}?"),
        }[q.kind]
        return rng.choice(options)

    def realise_answer(self, q: Question, rng: random.Random) -> str:
        if q.kind == "count":
            n = q.answer
            return rng.choice((
                _cap(_NUMBER[n]) + ".", n + ".",
                "There is one shape." if n == "1" else f"There are {_NUMBER[n]} shapes.",
            ))
        assert q.target is not None
        shape = q.target.shape
        if q.kind == "position":
            pos = self.position_phrase(q.answer, rng)
            return rng.choice((f"It is {pos}.", _cap(pos) + ".", f"The {shape} is {pos}."))
        if q.kind == "shape":
            pos = self.position_phrase(q.target.position, rng)
            return rng.choice((f"A {q.answer}.", f"It is a {q.answer}.", f"There is a {q.answer} {pos}."))
        return rng.choice((f"It is {q.answer}.", _cap(q.answer) + ".", f"The {shape} is {q.answer}."))
