"""RandAugment as BEiT-3 / VisCPM train with it, on PIL images.

The reference (unilm ``beit3/randaug.py``, copied into VisCPM) runs OpenCV ports
of PIL operations; here PIL does them itself. Its semantics are kept: ``n`` ops
drawn *with replacement*, each applied with probability 0.5 at magnitude ``m``
of 10; enhancement factor ``m/10 * 1.8 + 0.1``; shear ``m/10 * 0.3``; translation
``m/10 * 10`` pixels (absolute, not relative to the image); rotation
``m/10 * 30`` degrees; geometric ops have a random sign and fill with grey 128.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from mpm_framework.errors import ConfigError, did_you_mean

MAX_LEVEL = 10.0
TRANSLATE_PIXELS = 10.0
FILL = (128, 128, 128)


def _enhance(level: float) -> float:
    return level / MAX_LEVEL * 1.8 + 0.1


def _signed(value: float, rng: random.Random) -> float:
    return -value if rng.random() < 0.5 else value


def _affine(img: Image.Image, coeffs: tuple[float, ...]) -> Image.Image:
    # PIL maps output to input coordinates: (x, y) -> (a x + b y + c, d x + e y + f)
    return img.transform(img.size, Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=FILL)


def identity(img, level, rng):
    return img


def auto_contrast(img, level, rng):
    return ImageOps.autocontrast(img)


def equalize(img, level, rng):
    return ImageOps.equalize(img)


def brightness(img, level, rng):
    return ImageEnhance.Brightness(img).enhance(_enhance(level))


def sharpness(img, level, rng):
    return ImageEnhance.Sharpness(img).enhance(_enhance(level))


def color(img, level, rng):
    return ImageEnhance.Color(img).enhance(_enhance(level))


def contrast(img, level, rng):
    return ImageEnhance.Contrast(img).enhance(_enhance(level))


def shear_x(img, level, rng):
    s = _signed(level / MAX_LEVEL * 0.3, rng)
    return _affine(img, (1, -s, 0, 0, 1, 0))  # output x = input x + s * y


def shear_y(img, level, rng):
    s = _signed(level / MAX_LEVEL * 0.3, rng)
    return _affine(img, (1, 0, 0, -s, 1, 0))


def translate_x(img, level, rng):
    offset = _signed(level / MAX_LEVEL * TRANSLATE_PIXELS, rng)
    return _affine(img, (1, 0, offset, 0, 1, 0))  # content moves left by `offset`


def translate_y(img, level, rng):
    offset = _signed(level / MAX_LEVEL * TRANSLATE_PIXELS, rng)
    return _affine(img, (1, 0, 0, 0, 1, offset))


def rotate(img, level, rng):
    degrees = _signed(level / MAX_LEVEL * 30.0, rng)
    return img.rotate(degrees, resample=Image.BILINEAR, fillcolor=FILL)


def solarize(img, level, rng):
    return ImageOps.solarize(img, threshold=int(level / MAX_LEVEL * 256))


def posterize(img, level, rng):
    bits = int(level / MAX_LEVEL * 4)
    mask = (0xFF << (8 - bits)) & 0xFF  # 0 bits keeps nothing, as the reference
    return Image.fromarray(np.asarray(img) & np.uint8(mask))


OPS: dict[str, Callable[[Image.Image, float, random.Random], Image.Image]] = {
    "Identity": identity,
    "AutoContrast": auto_contrast,
    "Equalize": equalize,
    "Rotate": rotate,
    "Solarize": solarize,
    "Color": color,
    "Contrast": contrast,
    "Brightness": brightness,
    "Sharpness": sharpness,
    "ShearX": shear_x,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
    "Posterize": posterize,
    "ShearY": shear_y,
}

VISCPM_OPS = (
    "Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness",
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
)


class RandAugment:
    """``RandAugment(2, 7)`` is VisCPM's training setting."""

    def __init__(
        self,
        n: int = 2,
        m: float = 7,
        ops: Sequence[str] = VISCPM_OPS,
        prob: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ConfigError(
                f"unknown RandAugment op '{unknown[0]}'.{did_you_mean(unknown[0], OPS)} Ops: {', '.join(OPS)}"
            )
        if not ops:
            raise ConfigError("RandAugment needs at least one op")
        if not 0 <= m <= MAX_LEVEL:
            raise ConfigError(f"RandAugment magnitude must lie in [0, {MAX_LEVEL:g}], got {m}")
        self.n, self.m, self.ops, self.prob = n, m, list(ops), prob
        self.rng = rng or random.Random()

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.convert("RGB")
        for name in [self.rng.choice(self.ops) for _ in range(self.n)]:
            if self.rng.random() < self.prob:
                img = OPS[name](img, self.m, self.rng)
        return img

    def __repr__(self) -> str:
        return f"RandAugment(n={self.n}, m={self.m}, ops={self.ops})"
