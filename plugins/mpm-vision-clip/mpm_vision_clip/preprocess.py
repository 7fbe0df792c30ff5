"""Preprocessing from a checkpoint's own ``preprocessor_config.json``, with PIL.

Reproduces transformers' CLIP / SigLIP image processors (PIL backend): resize
(shortest edge, or to a fixed height x width) with the configured resample
filter, centre crop, rescale, normalise. Reading the checkpoint's file rather
than assuming defaults matters: SigLIP squashes to a square with mean/std 0.5,
CLIP resizes the short side and crops with its own statistics, and
336-pixel CLIPs differ from 224-pixel ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mpm_framework.errors import ConfigError
from mpm_framework.imaging import CLIP_MEAN, CLIP_STD

log = logging.getLogger(__name__)

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclass
class ProcessorSpec:
    """The fields of a ``preprocessor_config.json`` that shape the pixels."""

    size: dict[str, int]  # {"shortest_edge": n} or {"height": h, "width": w}
    crop_size: dict[str, int] | None
    resample: int = Image.BICUBIC
    do_resize: bool = True
    do_center_crop: bool = True
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD
    source: str = "defaults"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_size(self) -> int:
        """Side of the square the model sees (crop size, else the resize size)."""
        box = self.crop_size if self.do_center_crop and self.crop_size else self.size
        if "height" in box:
            return int(box["height"])
        return int(box["shortest_edge"])


def _size_dict(value: Any, default_to_square: bool) -> dict[str, int]:
    if isinstance(value, int):  # legacy configs: an int means the short side (CLIP) or a square
        return {"height": value, "width": value} if default_to_square else {"shortest_edge": value}
    if isinstance(value, dict) and ("shortest_edge" in value or {"height", "width"} <= set(value)):
        return {k: int(v) for k, v in value.items() if k in ("shortest_edge", "height", "width")}
    raise ConfigError(f"unsupported image processor size {value!r}: need shortest_edge or height/width")


def clip_defaults(image_size: int) -> ProcessorSpec:
    return ProcessorSpec({"shortest_edge": image_size}, {"height": image_size, "width": image_size})


def siglip_defaults(image_size: int) -> ProcessorSpec:
    return ProcessorSpec({"height": image_size, "width": image_size}, None, resample=Image.BICUBIC,
                         do_center_crop=False, image_mean=SIGLIP_MEAN, image_std=SIGLIP_STD)


def read_processor_config(path: str | Path, family: str, fallback: ProcessorSpec) -> ProcessorSpec:
    """The spec in ``path/preprocessor_config.json``; missing keys take the
    family's processor defaults (as transformers does), a missing file the
    ``fallback`` with a warning."""
    file = Path(path) / "preprocessor_config.json"
    if not file.is_file():
        log.warning("%s has no preprocessor_config.json; using %s defaults at %d px",
                    path, family, fallback.output_size)
        return fallback
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot parse {file}: {exc}") from None
    square = family == "siglip"
    base = siglip_defaults(224) if square else clip_defaults(224)
    size = _size_dict(data.get("size", base.size), default_to_square=square)
    crop = data.get("crop_size", base.crop_size)
    return ProcessorSpec(
        size=size,
        crop_size=_size_dict(crop, default_to_square=True) if crop is not None else None,
        resample=int(data.get("resample", base.resample)),
        do_resize=bool(data.get("do_resize", True)),
        do_center_crop=bool(data.get("do_center_crop", base.do_center_crop)),
        do_rescale=bool(data.get("do_rescale", True)),
        rescale_factor=float(data.get("rescale_factor", 1 / 255)),
        do_normalize=bool(data.get("do_normalize", True)),
        image_mean=tuple(float(x) for x in data.get("image_mean", base.image_mean)),
        image_std=tuple(float(x) for x in data.get("image_std", base.image_std)),
        source=str(file),
    )


def _shortest_edge_size(w: int, h: int, target: int) -> tuple[int, int]:
    """transformers' ``get_resize_output_image_size(default_to_square=False)``:
    the short side becomes ``target``, the long side is truncated, not rounded."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = target, int(target * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def expand_to_square(image: Image.Image, mean: tuple[float, ...]) -> Image.Image:
    """LLaVA-1.5's ``expand2square``: pad with the mean colour, image centred."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), tuple(int(m * 255) for m in mean))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


class ProcessorTransform:
    """PIL image -> (3, H, W) float tensor, per a :class:`ProcessorSpec`. The
    same in training and evaluation (LLaVA does not augment)."""

    def __init__(self, spec: ProcessorSpec, pad_to_square: bool = False) -> None:
        self.spec, self.pad_to_square = spec, pad_to_square

    def __call__(self, image: Image.Image) -> torch.Tensor:
        spec = self.spec
        image = image.convert("RGB")
        if self.pad_to_square:
            image = expand_to_square(image, spec.image_mean)
        if spec.do_resize:
            if "shortest_edge" in spec.size:
                target = _shortest_edge_size(*image.size, spec.size["shortest_edge"])
            else:
                target = (spec.size["width"], spec.size["height"])
            image = image.resize(target, spec.resample)
        if spec.do_center_crop and spec.crop_size:
            w, h = image.size
            cw, ch = spec.crop_size["width"], spec.crop_size["height"]
            top, left = (h - ch) // 2, (w - cw) // 2
            image = image.crop((left, top, left + cw, top + ch))
        array = np.asarray(image, dtype=np.float32)
        if spec.do_rescale:
            array = array * np.float32(spec.rescale_factor)
        if spec.do_normalize:
            array = (array - np.asarray(spec.image_mean, np.float32)) / np.asarray(spec.image_std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"ProcessorTransform({self.spec}, pad_to_square={self.pad_to_square})"
