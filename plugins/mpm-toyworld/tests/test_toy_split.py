"""The held-out split is made on scene content, not on seeds."""

from __future__ import annotations

import random

import pytest
from mpm_toyworld.split import (
    HELDOUT_FRACTION,
    key_split,
    sample_split_scene,
    scene_key,
    scene_split,
    split_rng,
)

from mpm_framework.toyworld.scene import COLORS, POSITIONS, SHAPES, SIZES, Obj, Scene


def _all_scenes() -> list[Scene]:
    objs = [Obj(c, s, z, p) for c in COLORS for s in SHAPES for z in SIZES for p in POSITIONS]
    pairs = [Scene((a, b)) for a in objs for b in objs if a.shape != b.shape and a.position != b.position]
    return [Scene((o,)) for o in objs] + pairs


def test_key_ignores_object_order():
    a = Obj("red", "circle", "small", "left")
    b = Obj("blue", "square", "large", "top")
    assert scene_key(Scene((a, b))) == scene_key(Scene((b, a)))
    assert scene_split(Scene((a, b))) == scene_split(Scene((b, a)))


def test_every_scene_is_in_one_split_and_the_share_is_near_the_target():
    keys = {scene_key(s) for s in _all_scenes()}
    assert len(keys) == 2400  # 96 one-object scenes + 2304 two-object scenes
    held = [k for k in keys if key_split(k) == "eval"]
    assert abs(len(held) / len(keys) - HELDOUT_FRACTION) < 0.03
    singles = [s for s in _all_scenes() if s.count == 1]
    assert 0 < sum(scene_split(s) == "eval" for s in singles) < len(singles)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_sampler_draws_only_from_its_split(split):
    rng = random.Random(3)
    for _ in range(300):
        assert scene_split(sample_split_scene(rng, split)) == split


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="unknown split"):
        sample_split_scene(random.Random(0), "test")


def test_purpose_streams_are_independent_and_reproducible():
    assert split_rng(0, "align").random() == split_rng(0, "align").random()
    assert split_rng(0, "align").random() != split_rng(0, "instruct").random()
    assert split_rng(0, "align").random() != split_rng(1, "align").random()
