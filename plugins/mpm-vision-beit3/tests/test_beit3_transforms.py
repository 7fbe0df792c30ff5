"""Preprocessing as the BEiT-3 / VisCPM checkpoints expect, and RandAugment."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework.errors import ConfigError


def _image(w=60, h=40, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_eval_transform_squashes_bicubic_with_inception_stats(make_beit3):
    enc = make_beit3()
    img = _image()
    out = enc.image_transform(train=False)(img)
    expected = np.asarray(img.resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255.0
    expected = (torch.from_numpy(expected).permute(2, 0, 1) - 0.5) / 0.5
    torch.testing.assert_close(out, expected)
    assert enc.image_mean == (0.5, 0.5, 0.5) and enc.image_std == (0.5, 0.5, 0.5)


def test_base_preset_expects_224_pixels():
    from mpm_vision_beit3.config import Beit3Config, resolve_arch

    arch = resolve_arch(Beit3Config(preset="base"))
    assert (arch.image_size, arch.patch_size, arch.num_image_tokens) == (224, 16, 197)


def test_train_transform_is_seeded_and_random(make_beit3):
    enc = make_beit3()
    img = _image(80, 50)
    a = enc.image_transform(train=True, rng=random.Random(3))
    b = enc.image_transform(train=True, rng=random.Random(3))
    first = a(img)
    assert first.shape == (3, 32, 32) and first.min() >= -1 and first.max() <= 1
    torch.testing.assert_close(first, b(img))
    assert any(not torch.equal(first, a(img)) for _ in range(5))
    assert a.augment is not None and a.augment.n == 2 and a.augment.m == 7


def test_augmentations_are_configurable(make_beit3):
    t = make_beit3(randaugment=False, hflip=False, crop_scale=[1.0, 1.0]).image_transform(train=True)
    assert t.augment is None and not t.flip and t.scale == (1.0, 1.0)
    custom = make_beit3(randaugment_n=3, randaugment_m=9, randaugment_ops=["Color", "Solarize"])
    aug = custom.image_transform(train=True).augment
    assert (aug.n, aug.m, aug.ops) == (3, 9, ["Color", "Solarize"])


def test_crop_falls_back_to_the_central_crop_within_the_ratio():
    from mpm_vision_beit3.transforms import Beit3ImageTransform

    t = Beit3ImageTransform(32, train=True, scale=(5.0, 6.0))  # never satisfiable: fallback
    assert t._random_crop_box(100, 10) == (43, 0, 56, 10)  # too wide: 4/3 of the height (13 px)
    assert t._random_crop_box(50, 60) == (0, 0, 50, 60)  # within 3/4..4/3: whole image


# -- RandAugment ----------------------------------------------------------------

def test_every_op_keeps_size_and_mode():
    from mpm_vision_beit3.randaug import OPS

    img = _image(24, 20)
    for name, op in OPS.items():
        out = op(img, 7, random.Random(0))
        assert out.size == img.size and out.mode == "RGB", name


def test_translate_moves_seven_pixels_at_magnitude_seven():
    from mpm_vision_beit3.randaug import translate_x

    img = _image(30, 12)
    rng = random.Random(0)
    sign = -1 if random.Random(0).random() < 0.5 else 1
    out = np.asarray(translate_x(img, 7, rng)).astype(int)
    src = np.asarray(img).astype(int)
    if sign > 0:  # content moves left by 7, grey fills the right edge
        assert np.array_equal(out[:, :-7], src[:, 7:]) and (out[:, -7:] == 128).all()
    else:
        assert np.array_equal(out[:, 7:], src[:, :-7]) and (out[:, :7] == 128).all()


def test_enhance_factor_and_rotation_magnitudes():
    from mpm_vision_beit3.randaug import brightness, rotate

    grey = Image.new("RGB", (16, 16), (100, 100, 100))
    assert np.asarray(brightness(grey, 7, random.Random(0)))[0, 0, 0] == 136  # factor 1.36
    square = Image.new("RGB", (40, 40), (255, 255, 255))
    rotated = np.asarray(rotate(square, 7, random.Random(0)))
    assert (rotated[0, 0] == 128).all() and (rotated[20, 20] == 255).all()  # corners filled grey


def test_randaugment_semantics():
    from mpm_vision_beit3.randaug import RandAugment

    img = _image()
    assert RandAugment(0, 7)(img).tobytes() == img.tobytes()
    assert RandAugment(2, 7, ops=["Identity"])(img).tobytes() == img.tobytes()
    never = RandAugment(3, 7, ops=["Equalize"], prob=0.0)
    assert never(img).tobytes() == img.tobytes()
    always = RandAugment(1, 7, ops=["Equalize"], prob=1.0)
    assert always(img).tobytes() != img.tobytes()
    a, b = RandAugment(2, 7, rng=random.Random(1)), RandAugment(2, 7, rng=random.Random(1))
    assert all(a(img).tobytes() == b(img).tobytes() for _ in range(4))


def test_randaugment_bad_input():
    from mpm_vision_beit3.randaug import RandAugment

    with pytest.raises(ConfigError, match="Did you mean 'Rotate'"):
        RandAugment(2, 7, ops=["Rotat"])
    with pytest.raises(ConfigError, match="magnitude"):
        RandAugment(2, 12)
