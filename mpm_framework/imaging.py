"""Image loading and transforms with PIL + numpy (torchvision is not a dependency:
its wheels pin a CUDA torch on many machines)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import DataError

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_image(source: str | Path | Image.Image) -> Image.Image:
    """An RGB image, or :class:`DataError` for a missing or corrupt file."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    try:
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"image not found: {source}") from None
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
