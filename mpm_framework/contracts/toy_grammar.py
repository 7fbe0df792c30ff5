"""The toy-world grammar contract: an optional capability of a language pack.

The toy world (``mpm demo``, the ``mpm-toyworld`` plugin) renders images of
coloured shapes and needs, per language, captions and questions about them
and a parser that reads generated text back into attributes. That is what a
:class:`ToyGrammar` does. A real model needs none of it: a language pack
without a grammar installs, composes, trains, evaluates and chats.

A pack gets a grammar in one of two ways (looked up by
:func:`mpm_framework.text.toy_grammars.toy_grammar`):

1. **inline** — the pack class itself defines the five methods below (every
   pack written before the grammar was split off does): ``isinstance(pack,
   ToyGrammar)`` is then true without subclassing;
2. **by hook** — a plugin implements ``mpm_register_toy_grammars(register)``
   and calls ``register(code, "pkg.module:Factory")``; the factory is called
   with the pack (``Factory(pack)``) and returns a :class:`ToyGrammar`.

This module also holds the vocabulary grammars talk about — the attribute
values and the :class:`Scene` / :class:`Question` / :class:`ObjectSpec` data
types (torch-free). ``mpm_framework.toyworld.scene`` re-exports them, so packs
importing from there keep working.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..errors import MPMError

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom")
QUESTION_KINDS = ("color", "shape", "position", "count")


@dataclass(frozen=True)
class Obj:
    color: str
    shape: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]

    @property
    def count(self) -> int:
        return len(self.objects)


@dataclass(frozen=True)
class ObjectSpec:
    """What a parsed caption says about one object; None = not mentioned."""

    color: str | None = None
    shape: str | None = None
    size: str | None = None
    position: str | None = None


@dataclass(frozen=True)
class Question:
    """A question about a scene. ``target`` is the object it asks about (None for
    counting); ``answer`` is the canonical English value ("red", "left", "2")."""

    kind: str
    target: Obj | None
    answer: str


GRAMMAR_METHODS = ("realise_caption", "realise_question", "realise_answer", "parse_caption", "parse_answer")


class NoToyGrammarError(MPMError):
    """The toy world was asked for a language whose pack has no toy grammar."""


class ToyGrammar(ABC):
    """Realise scenes as text in one language and parse generated text back.

    Any object with the five methods counts as a grammar (``isinstance``
    checks the methods, as :class:`collections.abc.Sized` does), so a pack that
    defines them inline is its own grammar.
    """

    @abstractmethod
    def realise_caption(self, scene: Scene, rng: random.Random) -> str:
        """A grammatical caption of the scene; ``rng`` picks among templates."""

    @abstractmethod
    def realise_question(self, question: Question, rng: random.Random) -> str:
        """The question in this language."""

    @abstractmethod
    def realise_answer(self, question: Question, rng: random.Random) -> str:
        """A short answer in this language."""

    @abstractmethod
    def parse_caption(self, text: str) -> list[ObjectSpec]:
        """Recover the objects a (generated) caption describes."""

    @abstractmethod
    def parse_answer(self, text: str, kind: str) -> str | None:
        """Canonical English value of an answer (``"red"``, ``"2"``) or None."""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        if cls is not ToyGrammar:
            return NotImplemented
        return all(callable(getattr(other, m, None)) and not getattr(getattr(other, m), "__isabstractmethod__", False)
                   for m in GRAMMAR_METHODS) or NotImplemented
