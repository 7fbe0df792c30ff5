"""The image preprocessing BEiT-3 / VisCPM checkpoints were trained with.

Evaluation squashes the image to ``size x size`` (bicubic; no centre crop),
training takes timm's RandomResizedCrop (scale 0.5-1, ratio 3/4-4/3, bicubic),
a horizontal flip and RandAugment; both normalise with the Inception mean/std
(0.5, 0.5, 0.5), so pixels land in [-1, 1].
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

from mpm_framework.imaging import INCEPTION_MEAN, INCEPTION_STD, ImageTransform


class Beit3ImageTransform(ImageTransform):
    def __init__(
        self,
        size: int,
        mean: tuple[float, float, float] = INCEPTION_MEAN,
        std: tuple[float, float, float] = INCEPTION_STD,
        train: bool = False,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        augment=None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(size, mean, std, train=train, scale=tuple(scale), flip=flip,
                         resample=Image.BICUBIC, augment=augment, rng=rng)
        self.ratio = ratio

    def _random_crop_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        """timm's RandomResizedCropAndInterpolation: 10 tries, then the largest
        central crop whose aspect ratio lies within ``ratio``."""
        area = w * h
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * self.rng.uniform(*self.scale)
            aspect = math.exp(self.rng.uniform(*log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = self.rng.randint(0, w - cw), self.rng.randint(0, h - ch)
                return x, y, x + cw, y + ch
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, round(w / min(self.ratio))
        elif in_ratio > max(self.ratio):
            cw, ch = round(h * max(self.ratio)), h
        else:
            cw, ch = w, h
        x, y = (w - cw) // 2, (h - ch) // 2
        return x, y, x + cw, y + ch

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.train:
            return super().__call__(image)
        image = image.convert("RGB").resize((self.size, self.size), self.resample)
        array = np.asarray(image, dtype=np.float32) / 255.0
        return (torch.from_numpy(array).permute(2, 0, 1) - self.mean) / self.std
