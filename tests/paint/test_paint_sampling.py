"""Painting: seeds, guidance and the negative prompt, batches, filters, reranking."""

import numpy as np
import pytest
import torch

from mpm_framework.errors import ConfigError
from mpm_framework.paint.filters import BlocklistFilter
from mpm_framework.paint.sampling import paint, sample_tensors, to_pil


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_the_same_seed_gives_the_same_image(tiny_paint_stack):
    options = {"num_steps": 3, "guidance_scale": 3.0}
    a = tiny_paint_stack.paint("a red circle on the left", seed=5, **options)[0]
    b = tiny_paint_stack.paint("a red circle on the left", seed=5, **options)[0]
    c = tiny_paint_stack.paint("a red circle on the left", seed=6, **options)[0]
    assert a.seeds == [5] and a.image.size == (16, 16)
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert not np.array_equal(pixels(a.image), pixels(c.image))


def test_an_image_does_not_depend_on_its_batch(tiny_paint_stack):
    alone = tiny_paint_stack.paint("ein blaues Quadrat", seed=9, num_steps=3)[0]
    batch = tiny_paint_stack.paint(["a red circle", "ein blaues Quadrat", "一个圆形"], seed=9, num_steps=3,
                                   images_per_prompt=2, batch_size=4)
    assert [r.seeds for r in batch] == [[9, 10]] * 3
    # Batched convolutions may round differently: allow one grey level.
    assert np.abs(pixels(batch[1].images[0]) - pixels(alone.image)).max() <= 1


def test_the_negative_prompt_is_the_empty_caption_by_default(tiny_paint_stack):
    stack = tiny_paint_stack.eval()
    prompts, seeds = ["a green triangle"], [3]
    ours = sample_tensors(stack, prompts, seeds, guidance_scale=4.0, num_steps=3)
    cond, mask = stack.encode_prompts(prompts)
    empty, empty_mask = stack.encode_prompts([""])
    reference = stack.decoder.sample(cond, mask, empty, empty_mask, 4.0, 3, [torch.Generator().manual_seed(3)])
    torch.testing.assert_close(ours, reference)
    other = sample_tensors(stack, prompts, seeds, negative_prompt="blurry", guidance_scale=4.0, num_steps=3)
    assert not torch.allclose(ours, other)
    # At guidance 1.0 only the conditional model runs: the negative prompt has no effect.
    g1 = sample_tensors(stack, prompts, seeds, guidance_scale=1.0, num_steps=3)
    g1_neg = sample_tensors(stack, prompts, seeds, negative_prompt="blurry", guidance_scale=1.0, num_steps=3)
    torch.testing.assert_close(g1, g1_neg)


def test_prompt_filters_refuse_before_painting(tiny_paint_stack, tmp_path, monkeypatch):
    blocklist = tmp_path / "blocked.txt"
    blocklist.write_text("# one term per line\nForbidden\n禁止\n", encoding="utf-8")
    calls = []
    real = tiny_paint_stack.decoder.sample
    monkeypatch.setattr(tiny_paint_stack.decoder, "sample", lambda *a, **k: calls.append(a[0].shape[0]) or real(*a, **k))
    results = paint(tiny_paint_stack, ["a FORBIDDEN red circle", "一个禁止的圆", "a blue square"],
                    num_steps=2, prompt_filters=[BlocklistFilter.from_file(blocklist)])
    assert [r.rejected for r in results] == ["blocked term 'forbidden'", "blocked term '禁止'", None]
    assert results[0].images == [] and results[2].image is not None
    assert calls == [1]  # only the accepted prompt reached the decoder


def test_image_filters_withhold_images(tiny_paint_stack):
    results = paint(tiny_paint_stack, "a red circle", num_steps=2, images_per_prompt=3,
                    image_filters=[lambda image: "too dark" if np.asarray(image).mean() < 1e9 else None])
    assert results[0].images == [] and results[0].withheld == ["too dark"] * 3


class RedScorer:
    """Scores by mean red: a stand-in judge whose ranking the test can verify."""

    def score(self, images, text):
        return [float(np.asarray(im, dtype=np.float32)[..., 0].mean()) for im in images]


def test_reranking_keeps_the_best_candidates(tiny_paint_stack):
    result = paint(tiny_paint_stack, "a red circle", num_steps=2, images_per_prompt=4, keep=2,
                   scorer=RedScorer(), seed=20)[0]
    everything = paint(tiny_paint_stack, "a red circle", num_steps=2, images_per_prompt=4, seed=20)[0]
    reds = dict(zip(everything.seeds, RedScorer().score(everything.images, ""), strict=True))
    best = sorted(reds, key=lambda s: -reds[s])[:2]
    assert result.seeds == best
    assert result.scores == pytest.approx([reds[s] for s in best])
    assert len(result.images) == 2


def test_bad_paint_options_are_clear_errors(tiny_paint_stack):
    with pytest.raises(ConfigError, match="keep must be between 1 and images_per_prompt=2"):
        paint(tiny_paint_stack, "x", images_per_prompt=2, keep=3)
    with pytest.raises(ConfigError, match="images_per_prompt must be at least 1"):
        paint(tiny_paint_stack, "x", images_per_prompt=0)


def test_to_pil_maps_the_value_range():
    images = to_pil(torch.tensor([[[[-1.0, 1.0]], [[0.0, 0.0]], [[1.0, -1.0]]]]))
    assert np.asarray(images[0]).tolist() == [[[0, 128, 255], [255, 128, 0]]]


def test_a_local_clip_checkpoint_reranks(tiny_paint_stack, tiny_clip, tmp_path):
    from mpm_framework.paint.scoring import CLIPScorer

    path, model, processor = tiny_clip
    scorer = CLIPScorer(path)
    result = paint(tiny_paint_stack, "a red circle", num_steps=2, images_per_prompt=3, scorer=scorer)[0]
    inputs = processor(text=["a red circle"], images=result.images, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**inputs).logits_per_image[:, 0].tolist()
    assert result.scores == pytest.approx(expected, abs=1e-5)
    assert result.scores == sorted(result.scores, reverse=True)
    with pytest.raises(ConfigError, match="no CLIP-style checkpoint"):
        CLIPScorer(tmp_path / "missing")
