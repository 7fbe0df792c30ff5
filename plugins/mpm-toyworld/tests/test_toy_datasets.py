"""Align / instruct / eval data: record formats the trainer accepts, exact
language shares, and evaluation strictly on held-out scenes."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from mpm_toyworld.datasets import (
    CAPTION_TASK,
    VQA_TASK,
    align_records,
    eval_items,
    instruct_records,
    language_schedule,
)
from mpm_toyworld.split import scene_key, scene_split

from mpm_framework.errors import ConfigError
from mpm_framework.toyworld.scene import facts
from mpm_framework.training.samples import normalise


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_language_schedule_is_exact():
    order = language_schedule(1000, {"en": 0.98, "zh": 0.02 / 3, "de": 0.02 / 3, "fr": 0.02 / 3}, 0, "x")
    counts = Counter(order)
    assert len(order) == 1000 and counts["en"] == 980
    assert sorted(counts[c] for c in ("zh", "de", "fr")) == [6, 7, 7]
    assert order != sorted(order)  # shuffled
    assert order == language_schedule(1000, {"en": 0.98, "zh": 0.02 / 3, "de": 0.02 / 3, "fr": 0.02 / 3}, 0, "x")


def test_align_records_are_english_pairs_of_training_scenes(packs):
    data = align_records(packs, {"en": 1.0}, 200, seed=0)
    assert len(data) == 200
    for i in range(len(data)):
        record = data[i]
        sample = normalise(record, kind=None, lang="en", where=f"align[{i}]")
        assert sample.kind == "pairs" and sample.lang == "en"
        scene, _, _ = data.scene_and_image(i)
        assert scene_split(scene) == "train"
        assert facts(packs["en"].parse_caption(record["text"])) == facts(scene.objects)
    # records are a pure function of (seed, index): same text, same pixels on every read
    assert data[5]["text"] == data[5]["text"] and _png(data[5]["image"]) == _png(data[5]["image"])
    assert data[-1]["text"] == data[199]["text"]
    with pytest.raises(IndexError):
        data[200]


def test_native_align_covers_every_language(packs):
    data = align_records(packs, {c: 1.0 for c in packs}, 400, seed=0)
    assert Counter(data[i]["lang"] for i in range(len(data))) == {c: 100 for c in packs}


@pytest.mark.parametrize("share", [0.0, 0.02])
def test_instruct_records_mix_english_with_an_exact_calibration_share(packs, share):
    n = 500
    data = instruct_records(packs, n, seed=1, calibration_share=share, targets=["zh", "de", "fr"])
    langs = Counter(data[i]["lang"] for i in range(n))
    assert langs["en"] == round(n * (1 - share))
    assert sum(langs[c] for c in ("zh", "de", "fr")) == round(n * share)
    tasks = Counter()
    for i in range(n):
        record = data[i]
        sample = normalise(record, kind=None, lang="en", where=f"instruct[{i}]")
        assert sample.kind == "instruct" and sample.has_image
        user, answer = sample.turns
        assert user.content.startswith("<image>\n") and answer.role == "assistant" and answer.content
        pack = packs[record["lang"]]
        tasks[CAPTION_TASK if user.content.split("\n", 1)[1] in pack.caption_prompts else VQA_TASK] += 1
    assert 0.15 < tasks[CAPTION_TASK] / n < 0.45


def test_instruct_rejects_bad_shares(packs):
    # ConfigErrors (printed without a traceback by the CLI) that say what to change
    with pytest.raises(ConfigError, match="needs target languages: name them"):
        instruct_records(packs, 10, 0, calibration_share=0.1)
    with pytest.raises(ConfigError, match=r"calibration_share must be in \[0, 1\)"):
        instruct_records(packs, 10, 0, calibration_share=1.0, targets=["de"])
    with pytest.raises(ConfigError, match="translation_noise must be in"):
        instruct_records(packs, 10, 0, translation_noise=1.5)
    with pytest.raises(ConfigError, match="at least one language"):
        language_schedule(10, {"en": 0.0}, 0, "align")
    with pytest.raises(ConfigError, match=r"no language pack for \['xx'\]; installed: .*Install the pack"):
        align_records(packs, {"xx": 1.0}, 10, seed=0)


def test_eval_scenes_are_held_out_and_disjoint_from_training(packs):
    items = eval_items(packs, list(packs), n_scenes=60, seed=0, questions_per_scene=2)
    assert all(scene_split(it.scene) == "eval" for it in items)
    eval_keys = {scene_key(it.scene) for it in items}
    train = align_records(packs, {"en": 1.0}, 2000, seed=0)
    train_keys = {scene_key(train.scene_and_image(i)[0]) for i in range(len(train))}
    tuned = instruct_records(packs, 2000, seed=0, calibration_share=0.02, targets=["zh", "de", "fr"])
    train_keys |= {scene_key(tuned.scene_and_image(i)[0]) for i in range(len(tuned))}
    assert not eval_keys & train_keys


def test_eval_asks_the_same_scenes_in_every_language(packs):
    items = eval_items(packs, list(packs), n_scenes=10, seed=0, questions_per_scene=2)
    per_lang = {c: [it for it in items if it.lang == c] for c in packs}
    assert all(len(v) == 30 for v in per_lang.values())
    reference = [(it.scene, it.task, it.question) for it in per_lang["en"]]
    for code, mine in per_lang.items():
        assert [(it.scene, it.task, it.question) for it in mine] == reference
        caption_prompts = [it.prompt for it in mine if it.task == CAPTION_TASK]
        assert all(p in packs[code].caption_prompts for p in caption_prompts)
    questions = [it.question for it in per_lang["en"] if it.task == VQA_TASK]
    pairs = [questions[i:i + 2] for i in range(0, len(questions), 2)]
    assert all(a != b for a, b in pairs)  # two distinct questions per scene


def test_corrupt_response_kinds():
    import random

    from mpm_toyworld.datasets import corrupt_response

    seen = {}
    for i in range(60):
        out, kind = corrupt_response("ein roter Kreis links", "a red circle on the left", random.Random(i))
        seen[kind] = out
    assert seen["wrong-language"] == "a red circle on the left"
    assert len(seen["drop"].split()) == 3 and set(seen["drop"].split()) < {"ein", "roter", "Kreis", "links"}
    assert len(seen["substitute"].split()) == 4 and seen["substitute"] != "ein roter Kreis links"
    zh, kind = corrupt_response("红色的圆", "red circle", random.Random(1))
    assert zh != "红色的圆"


@pytest.mark.parametrize("noise", [0.0, 0.3, 1.0])
def test_translation_noise_corrupts_that_share_of_the_calibration_only(packs, noise):
    from mpm_toyworld.datasets import instruct_records

    kwargs = dict(calibration_share=0.5, targets=["de", "zh"], caption_share=0.3, image_size=16)
    clean = instruct_records(packs, 200, 0, **kwargs)
    noisy = instruct_records(packs, 200, 0, translation_noise=noise, **kwargs)
    changed = {"en": 0, "target": 0}
    totals = Counter("en" if r["lang"] == "en" else "target" for r in clean)
    for a, b in zip(clean, noisy):
        assert a["conversations"][0] == b["conversations"][0]  # the request is never touched
        if a["conversations"][1]["value"] != b["conversations"][1]["value"]:
            changed["en" if a["lang"] == "en" else "target"] += 1
    assert changed["en"] == 0
    assert changed["target"] / totals["target"] == pytest.approx(noise, abs=0.12)
    with pytest.raises(ValueError, match="translation_noise"):
        instruct_records(packs, 10, 0, translation_noise=1.5, **kwargs)
