"""Scoring generated text with the asked language's pack."""

from __future__ import annotations

import math
import random

from mpm_toyworld.datasets import CAPTION_TASK, eval_items
from mpm_toyworld.scoring import METRICS, is_valid_metric, score_responses


def _gold(items, packs, answer_lang=None):
    rng = random.Random(0)
    out = []
    for it in items:
        pack = packs[answer_lang or it.lang]
        out.append(pack.realise_caption(it.scene, rng) if it.task == CAPTION_TASK
                   else pack.realise_answer(it.question, rng))
    return out


def test_reference_answers_score_perfectly(packs):
    items = eval_items(packs, list(packs), n_scenes=12, seed=0)
    metrics, rows = score_responses(items, _gold(items, packs), packs)
    assert len(rows) == len(items)
    for code in packs:
        m = metrics[code]
        assert m["caption_f1"] == 1.0 and m["vqa_acc"] == 1.0
        assert m["lang_rate"] >= 0.95, (code, [r["response"] for r in rows if r["lang"] == code and not r["in_language"]])
        assert all(is_valid_metric(m[k]) for k in METRICS)


def test_english_answers_to_target_questions_are_understanding_not_language(packs):
    """The quasi-zero-shot case: right content, wrong language."""
    items = eval_items(packs, ["en", "zh", "de"], n_scenes=12, seed=1)
    metrics, _ = score_responses(items, _gold(items, packs, answer_lang="en"), packs)
    for code in ("zh", "de"):
        m = metrics[code]
        assert m["vqa_acc"] < 0.5 and m["vqa_acc_any"] == 1.0
        assert m["caption_f1"] < 0.5 and m["caption_f1_any"] == 1.0
        assert m["lang_rate"] < 0.1
    assert metrics["en"]["lang_rate"] > 0.95


def test_wrong_content_scores_low_and_empty_text_is_no_answer_in_the_language(packs):
    items = eval_items(packs, ["en", "fr"], n_scenes=12, seed=2)
    other = eval_items(packs, ["en", "fr"], n_scenes=12, seed=3)
    wrong = _gold(other, packs)
    metrics, _ = score_responses(items, wrong, packs)
    assert metrics["fr"]["caption_f1"] < 0.6
    empty, _ = score_responses(items, [""] * len(items), packs)
    assert empty["en"]["caption_f1"] == 0.0 and empty["en"]["vqa_acc"] == 0.0
    # a model that says nothing did not answer in the language (it used to leave the rate
    # undefined, and a six-language run then failed its integrity check); numbers stay neutral
    assert empty["en"]["lang_rate"] == 0.0 and is_valid_metric(empty["en"]["lang_rate"])
    numbers, _ = score_responses(items, ["2."] * len(items), packs)
    assert math.isnan(numbers["en"]["lang_rate"]) and not is_valid_metric(numbers["en"]["lang_rate"])
