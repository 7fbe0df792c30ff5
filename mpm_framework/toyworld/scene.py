"""Scenes of the shapes world, in a language-neutral form (torch-free).

Language packs realise a :class:`Scene` as captions and questions and parse
generated text back into :class:`ObjectSpec` lists for scoring.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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


def sample_scene(rng: random.Random, max_objects: int = 2) -> Scene:
    n = rng.randint(1, max_objects)
    positions = rng.sample(POSITIONS, n)
    shapes = rng.sample(SHAPES, n)  # distinct shapes keep every question unambiguous
    objects = tuple(
        Obj(rng.choice(COLORS), shape, rng.choice(SIZES), pos)
        for shape, pos in zip(shapes, positions, strict=True)
    )
    return Scene(objects)


def questions_for(scene: Scene) -> list[Question]:
    """Every unambiguous question the scene supports."""
    qs = [Question("count", None, str(scene.count))]
    for obj in scene.objects:
        qs.append(Question("color", obj, obj.color))  # "what colour is the <shape>?"
        qs.append(Question("position", obj, obj.position))  # "where is the <shape>?"
        qs.append(Question("shape", obj, obj.shape))  # "what shape is on the <position>?"
    return qs


def facts(objects: list[ObjectSpec] | tuple[Obj, ...]) -> set[tuple[str, str, str]]:
    """(attribute, value, shape) facts plus ("count", n, "") for caption F1."""
    out: set[tuple[str, str, str]] = set()
    for o in objects:
        if o.shape is None:
            continue
        out.add(("shape", o.shape, o.shape))
        for attr in ("color", "size", "position"):
            value = getattr(o, attr)
            if value is not None:
                out.add((attr, value, o.shape))
    return out


def caption_f1(predicted: list[ObjectSpec], scene: Scene) -> float:
    gold = facts(scene.objects)
    pred = facts(predicted)
    if not gold and not pred:
        return 1.0
    tp = len(gold & pred)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(pred), tp / len(gold)
    return 2 * precision * recall / (precision + recall)
