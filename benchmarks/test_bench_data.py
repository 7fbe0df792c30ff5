"""Data loading: samples/s of the align stage's input pipeline (read a JSON-lines
record, decode a JPEG, CLIP transform to 224 px, prompt encoding, collate) in
one process -- the trainer's default ``data.num_workers=0`` -- against the rate
at which our training step consumes samples (measured in the same run by
``test_bench_train.py``). Target: >= 3x the consumption rate.

Images are 640 x 480 JPEGs (COCO's typical size) with smooth content and
noise, so they decode like photographs rather than like flat colour.
"""

import json

import bench_support as bs
import numpy as np
import pytest
from PIL import Image

STEPS = 4  # micro-batches per round (the records written: one pass)


def _write_data(folder, n: int):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    lines = []
    for i, text in enumerate(bs.captions(n, seed=5)):
        base = np.stack([np.sin(x / (40 + 7 * c) + i) * np.cos(y / (50 + 5 * c)) for c in range(3)], -1)
        pixels = np.clip(127 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.jpg", quality=90)
        lines.append(json.dumps({"image": f"img_{i:03d}.jpg", "caption": text}))
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def pipeline(bench_size, tmp_path_factory):
    from omegaconf import OmegaConf

    from mpm_framework.training.config import DataSource
    from mpm_framework.training.recipes import stage_config
    from mpm_framework.training.sources import open_source
    from mpm_framework.training.stages import get_stage

    batch_size = bs.SIZES[bench_size]["train_batch"]
    path = _write_data(tmp_path_factory.mktemp("bench_data"), STEPS * batch_size)
    stack = bs.build_ours(bench_size)
    cfg = stage_config(OmegaConf.create({"run": {"stage": "align"}, "data": {"max_length": 512}}))
    stage = get_stage("align")
    ctx = stage.make_context(stack, cfg)
    source = open_source(DataSource(path=str(path), format="jsonl", kind="pairs"), False)
    return stage, ctx, source, batch_size


def _load(stage, ctx, source, batch_size: int) -> int:
    """Prepare STEPS micro-batches from a fresh stream; returns the samples made."""
    from mpm_framework.training.pipeline import StepProducer

    producer = StepProducer(stage, ctx, [source], [1.0], seed=0, batch_size=batch_size, grad_accum=1)
    steps = iter(producer)
    samples = 0
    for _ in range(STEPS):
        data = next(steps)
        samples += data.micro[0].samples
        assert data.micro[0].batch["pixel_values"].shape[-1] == ctx.stack.vision.image_size
    return samples


def test_data_loading(benchmark, tag, pipeline):
    stage, ctx, source, batch_size = pipeline
    train_key = f"train/mpm-padded-{bs.attention_backends()[0]}"
    tag("data loading", "mpm", key="data/mpm", units=STEPS * batch_size, versus=train_key, ratio="speedup",
        target=3.0, versus_label="training step consumption", image="640x480 jpeg")
    samples = benchmark.pedantic(_load, args=(stage, ctx, source, batch_size), rounds=5, warmup_rounds=1)
    assert samples == STEPS * batch_size
