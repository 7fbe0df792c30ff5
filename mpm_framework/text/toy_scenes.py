"""Sampling toy-world scenes and scoring parsed captions (torch-free).

Helpers that go with the :class:`~mpm_framework.contracts.toy_grammar.ToyGrammar`
contract: the toy world samples its data with them, and a grammar's round
trip (realise -> parse) is checked with them (``mpm lang check``, the packs' tests).
"""

from __future__ import annotations

import random

from ..contracts.toy_grammar import COLORS, POSITIONS, SHAPES, SIZES, Obj, ObjectSpec, Question, Scene


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
