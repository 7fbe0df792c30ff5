"""Render shapes-world scenes to small RGB images (PIL only)."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from mpm_framework.contracts.toy_grammar import Obj, Scene

RGB = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
# Region centres as fractions of the image side.
CENTRES = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75)}
RADIUS = {"small": 0.09, "large": 0.17}


def _draw(draw: ImageDraw.ImageDraw, obj: Obj, size: int, rng: random.Random) -> None:
    cx, cy = CENTRES[obj.position]
    jitter = 0.04
    cx, cy = (cx + rng.uniform(-jitter, jitter)) * size, (cy + rng.uniform(-jitter, jitter)) * size
    r = RADIUS[obj.size] * size * rng.uniform(0.9, 1.1)
    fill = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in RGB[obj.color])
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif obj.shape == "square":
        s = r * 0.9
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene, size: int = 64, rng: random.Random | None = None) -> Image.Image:
    """The scene on a light background; ``rng`` jitters position, size and colour."""
    rng = rng or random.Random(0)
    shade = rng.randint(225, 250)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        _draw(draw, obj, size, rng)
    return image
