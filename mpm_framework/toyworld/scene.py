"""Compatibility path: the toy-world vocabulary, re-exported.

The scene types and attribute values live with the toy-grammar contract
(:mod:`mpm_framework.contracts.toy_grammar`), the sampling and scoring helpers
in :mod:`mpm_framework.text.toy_scenes`; the toy world itself is the
``mpm-toyworld`` plugin. Language packs written against
``mpm_framework.toyworld.scene`` keep working through this module.
"""

from __future__ import annotations

from ..contracts.toy_grammar import (
    COLORS,
    POSITIONS,
    QUESTION_KINDS,
    SHAPES,
    SIZES,
    Obj,
    ObjectSpec,
    Question,
    Scene,
)
from ..text.toy_scenes import caption_f1, facts, questions_for, sample_scene

__all__ = [
    "COLORS", "POSITIONS", "QUESTION_KINDS", "SHAPES", "SIZES", "Obj", "ObjectSpec", "Question", "Scene",
    "caption_f1", "facts", "questions_for", "sample_scene",
]
