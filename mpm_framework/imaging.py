"""Image loading and transforms with PIL + numpy (torchvision is not a dependency:
its wheels pin a CUDA torch on many machines)."""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import DataError

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# PIL's own bomb limit (Image.MAX_IMAGE_PIXELS, ~89 M pixels): a small file that
# decodes to gigabytes would exhaust memory. MPM_MAX_IMAGE_PIXELS changes it.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485


def max_image_pixels() -> int:
    """The largest image (width x height) :func:`load_image` decodes."""
    value = os.environ.get("MPM_MAX_IMAGE_PIXELS", "").strip()
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        return max(1, int(float(value)))
    except ValueError:
        raise DataError(f"MPM_MAX_IMAGE_PIXELS must be a number of pixels, got {value!r}") from None


def _too_large(source: object, width: int, height: int, limit: int) -> DataError:
    return DataError(
        f"image {source} is {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} "
        "(a decompression bomb?); not decoded. Set MPM_MAX_IMAGE_PIXELS to allow larger images"
    )


def load_image(source: str | Path | Image.Image, max_pixels: int | None = None) -> Image.Image:
    """An RGB image, or :class:`DataError` for a missing or corrupt file or one
    larger than ``max_pixels`` (default :func:`max_image_pixels`), checked from
    the header before any pixel is decoded."""
    limit = max_pixels or max_image_pixels()
    if isinstance(source, Image.Image):
        if source.width * source.height > limit:
            raise _too_large("(in memory)", source.width, source.height, limit)
        return source.convert("RGB")
    try:
        with warnings.catch_warnings():
            # Our limit decides; PIL's warning (or its error at twice its own limit) must not.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.width * img.height > limit:
                    raise _too_large(source, img.width, img.height, limit)
                img.load()
                return img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"image not found: {source}") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {source} is too large to decode (a decompression bomb?): {exc}. "
                        "Set MPM_MAX_IMAGE_PIXELS to allow larger images") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"corrupt image {source}: {exc}") from None


class ImageTransform:
    """Resize + centre crop (eval) or random-resized crop + flip (train), then
    normalise. ``augment`` is an optional PIL -> PIL callable (e.g. RandAugment)
    applied in training."""

    def __init__(
        self,
        size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        train: bool = False,
        scale: tuple[float, float] = (0.5, 1.0),
        flip: bool = True,
        resample: int = Image.BICUBIC,
        augment=None,
        rng: random.Random | None = None,
    ) -> None:
        self.size, self.train, self.scale, self.flip = size, train, scale, flip
        self.resample, self.augment = resample, augment
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.rng = rng or random.Random()

    def _random_crop_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        area = w * h
        for _ in range(10):
            target = area * self.rng.uniform(*self.scale)
            ratio = np.exp(self.rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = int(round((target * ratio) ** 0.5)), int(round((target / ratio) ** 0.5))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = self.rng.randint(0, w - cw), self.rng.randint(0, h - ch)
                return x, y, x + cw, y + ch
        side = min(w, h)
        return (w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if self.train:
            image = image.crop(self._random_crop_box(*image.size))
            image = image.resize((self.size, self.size), self.resample)
            if self.flip and self.rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            if self.augment is not None:
                image = self.augment(image)
        else:
            w, h = image.size
            scale = self.size / min(w, h)
            image = image.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), self.resample)
            w, h = image.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return (tensor - self.mean) / self.std
