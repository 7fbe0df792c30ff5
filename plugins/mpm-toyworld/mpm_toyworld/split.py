"""Held-out scenes: the toy world's train / evaluation split (torch-free).

The shapes world has only a few thousand distinct scenes, so two different
seeds easily draw the same scene. Splitting by seed alone would evaluate on
scenes the model was trained on. The split is therefore made on the *scene*:
a stable hash of its content (object order ignored) puts every possible scene
in exactly one split, and every sampler here draws by rejection from its own
split. Evaluation scenes are new combinations of attributes seen in training.
"""

from __future__ import annotations

import hashlib
import random

from mpm_framework.contracts.toy_grammar import Scene
from mpm_framework.text.toy_scenes import sample_scene

SPLITS = ("train", "eval")
HELDOUT_FRACTION = 0.2


def scene_key(scene: Scene) -> str:
    """Content identity of a scene, independent of object order."""
    parts = sorted(f"{o.color}-{o.shape}-{o.size}-{o.position}" for o in scene.objects)
    return "|".join(parts)


def key_split(key: str, heldout_fraction: float = HELDOUT_FRACTION) -> str:
    """The split of the scene whose :func:`scene_key` is ``key``."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return "eval" if bucket < heldout_fraction else "train"


def scene_split(scene: Scene, heldout_fraction: float = HELDOUT_FRACTION) -> str:
    """``"eval"`` for held-out scenes, ``"train"`` for the rest (deterministic)."""
    return key_split(scene_key(scene), heldout_fraction)


def sample_split_scene(
    rng: random.Random, split: str, heldout_fraction: float = HELDOUT_FRACTION, max_objects: int = 2
) -> Scene:
    """A scene of ``split`` drawn by rejection (about 1.25 draws for train, 5 for eval)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    while True:
        scene = sample_scene(rng, max_objects=max_objects)
        if scene_split(scene, heldout_fraction) == split:
            return scene


def split_rng(seed: int, purpose: str) -> random.Random:
    """An RNG private to one (seed, purpose): corpus, align, instruct and eval
    streams never share draws, whatever their sizes."""
    return random.Random(f"mpm-toyworld/{seed}/{purpose}")
