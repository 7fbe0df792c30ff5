"""The judge of the toy paint experiment: a small CNN that reads colour, shape,
position and size off a rendered single-object scene.

It is trained on the renderer's images only (never on painted ones), so its
accuracy on painted images measures how well they show what the prompt asked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mpm_framework.contracts.toy_grammar import COLORS, POSITIONS, SHAPES, SIZES, Obj, Scene

from .render import render

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": COLORS, "shape": SHAPES, "position": POSITIONS, "size": SIZES,
}
SCORED = ("color", "shape", "position")  # what the paint table reports


def single_object_scenes(sizes: Sequence[str] = SIZES) -> list[Scene]:
    """Every one-object scene of the shapes world (with the given sizes)."""
    return [
        Scene((Obj(c, s, z, p),)) for c in COLORS for s in SHAPES for z in sizes for p in POSITIONS
    ]


def to_tensor(images) -> torch.Tensor:
    """PIL images -> (B, 3, H, W) in [-1, 1]."""
    import numpy as np

    array = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


def render_batch(scenes: Sequence[Scene], size: int, rng: random.Random) -> torch.Tensor:
    return to_tensor([render(scene, size, rng) for scene in scenes])


def labels_of(scenes: Sequence[Scene]) -> dict[str, torch.Tensor]:
    return {
        attr: torch.tensor([values.index(getattr(s.objects[0], attr)) for s in scenes])
        for attr, values in ATTRIBUTES.items()
    }


class AttributeClassifier(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 2 * width),
            nn.AdaptiveMaxPool2d(4),  # keeps a coarse layout: position needs it
            nn.Flatten(),
            nn.Linear(2 * width * 16, 128), nn.ReLU(),
        )
        self.heads = nn.ModuleDict({attr: nn.Linear(128, len(v)) for attr, v in ATTRIBUTES.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(images)
        return {attr: head(h) for attr, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        was = self.training
        self.eval()
        out = {attr: logits.argmax(-1) for attr, logits in self(images).items()}
        self.train(was)
        return out


@dataclass
class ClassifierReport:
    accuracy: dict[str, float]  # on held-out renders, per attribute
    num_train: int
    num_test: int


def accuracy(predicted: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-attribute accuracy plus ``all`` (colour, shape and position all right)."""
    out = {attr: float((predicted[attr] == labels[attr]).float().mean()) for attr in ATTRIBUTES}
    every = torch.stack([predicted[a] == labels[a] for a in SCORED]).all(0)
    out["all"] = float(every.float().mean())
    return out


def train_classifier(
    scenes: Sequence[Scene],
    image_size: int,
    num_train: int,
    num_test: int,
    epochs: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[AttributeClassifier, ClassifierReport]:
    """Train on ``num_train`` jittered renders, report accuracy on ``num_test``
    fresh renders. Gaussian pixel noise in training makes the judge tolerant of
    the grain a few-step sampler leaves, without teaching it any attribute."""
    from tqdm.auto import tqdm

    rng = random.Random(f"paint-classifier/{seed}")
    torch.manual_seed(seed)
    train_scenes = [rng.choice(scenes) for _ in range(num_train)]
    test_scenes = [rng.choice(scenes) for _ in range(num_test)]
    x, y = render_batch(train_scenes, image_size, rng), labels_of(train_scenes)
    x_test, y_test = render_batch(test_scenes, image_size, rng), labels_of(test_scenes)
    model = AttributeClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((num_train + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="attribute classifier", disable=not progress, leave=False)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(num_train)
        for start in range(0, num_train, batch_size):
            idx = order[start:start + batch_size]
            images = x[idx] + 0.1 * torch.randn_like(x[idx])
            logits = model(images)
            loss = sum(F.cross_entropy(logits[a], y[a][idx]) for a in ATTRIBUTES)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
    bar.close()
    report = ClassifierReport(accuracy(model.predict(x_test), y_test), num_train, num_test)
    return model, report
