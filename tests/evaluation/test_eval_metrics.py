"""Metrics against hand-computed values, sacrebleu's own numbers and worked CIDEr-D examples."""

from __future__ import annotations

import math
import re

import pytest

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.evaluation.metrics import (
    bleu,
    caption_tokens,
    chrf,
    cider,
    cider_d,
    exact_match,
    response_language_rate,
    vqa_accuracy,
)


class WordPack(LanguagePack):
    """Words and punctuation split by a regex: predictable tokens for hand computation."""

    code, name, native_name, script, lingua_name = "en", "English", "English", "Latn", "ENGLISH"
    caption_prompts = ("Describe the image.",)
    phrases: dict[str, str] = {}

    def calibration(self):
        return []

    def segment_words(self, text):
        return re.findall(r"\w+|[^\w\s]", text.lower())

    def realise_caption(self, scene, rng):
        raise NotImplementedError

    def realise_question(self, question, rng):
        raise NotImplementedError

    def realise_answer(self, question, rng):
        raise NotImplementedError

    def parse_caption(self, text):
        return []

    def parse_answer(self, text, kind):
        return None


PACK = WordPack()


# -- BLEU / chrF --------------------------------------------------------------------------


def test_bleu_by_hand():
    # hyp "the cat sat on the mat" vs ref "the cat is on the mat" (6 words each, BP = 1):
    # 1-grams 5/6 (the x2, cat, on, mat), 2-grams 3/5 (the cat, on the, the mat),
    # 3-grams 1/4 (on the mat), 4-grams 0/3 -> sacrebleu's default 'exp' smoothing
    # replaces it by 1 / (2 * 3)
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert bleu(["The cat sat on the mat."], [["the cat is on the mat"]], PACK) == pytest.approx(expected, abs=1e-9)


def test_bleu_and_chrf_equal_sacrebleu_on_the_packs_tokens():
    import sacrebleu

    hyps = ["A red circle, on the left!", "two squares", "a BIG blue triangle at the top"]
    refs = [["a red circle on the left", "the red circle is on the left side"], ["two small squares"],
            ["a large blue triangle at the top", "blue triangle, top"]]
    tokens = lambda texts: [" ".join(t) for t in caption_tokens(texts, PACK)]  # noqa: E731
    streams = [tokens([r[k] if k < len(r) else "" for r in refs]) for k in range(2)]
    streams[1][1] = None  # the second item has one reference only
    own_bleu = sacrebleu.corpus_bleu(tokens(hyps), streams, tokenize="none").score
    own_chrf = sacrebleu.corpus_chrf(tokens(hyps), streams).score
    assert bleu(hyps, refs, PACK) == pytest.approx(own_bleu)
    assert chrf(hyps, refs, PACK) == pytest.approx(own_chrf)
    # without a pack the texts go to sacrebleu as they are
    assert chrf(["abc def"], [["abc def"]]) == pytest.approx(100.0)
    assert bleu(["x y z w"], [["x y z w"]]) == pytest.approx(100.0)


def test_chrf_extremes():
    assert chrf(["the red circle"], [["The red circle."]], PACK) == pytest.approx(100.0)
    assert chrf(["xyz"], [["abc"]], PACK) == pytest.approx(0.0)


def test_caption_tokens_drop_punctuation_and_case():
    assert caption_tokens(["A red circle, on the LEFT."], PACK) == [["a", "red", "circle", "on", "the", "left"]]


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        bleu(["a", "b"], [["a"]], PACK)
    with pytest.raises(ValueError, match="no reference"):
        chrf(["a"], [[]], PACK)


# -- CIDEr-D ----------------------------------------------------------------------------


def test_cider_d_identical_short_captions():
    # corpus of 2 images: "a" is in both reference sets (idf = log 2 - log 2 = 0);
    # "cat" and "a cat" get weight log 2 with norm log 2 -> cosine 1 for n = 1, 2;
    # no 3- or 4-grams -> 0. Same length -> no penalty. Mean over n: 2/4; x10 -> 5.
    result = cider_d([["a", "cat"], ["a", "dog"]], [[["a", "cat"]], [["a", "dog"]]])
    assert result.per_item == pytest.approx([5.0, 5.0])
    assert result.score == pytest.approx(5.0)


def test_cider_d_worked_example_with_clipping_penalty_and_two_references():
    L = math.log(2)  # idf of an n-gram in one of the 2 images' references
    # image 1: hyp "a cat", refs "a cat sat" and "a cat"
    #   vs "a cat sat": n=1: (cat: L*L) / (|h|=L * |r|=sqrt(2) L) = 1/sqrt2; n=2 likewise
    #   ("a cat" shared, "cat sat" only in ref); n=3: hyp has none -> 0.
    #   length (bigrams) 1 vs 2 -> penalty exp(-1 / (2 * 36)).
    #   vs "a cat": cosine 1 for n = 1, 2.
    penalty = math.exp(-1 / 72)
    cos_sat = (L * L) / (L * math.sqrt(2) * L)  # n = 1 and n = 2 against "a cat sat"
    image1 = 10 * ((cos_sat + cos_sat) * penalty + (1 + 1)) / 4 / 2
    # image 2: hyp "dog dog", ref "a dog": hyp dog weight 2L is clipped at the
    #   ref's L: (L * L) / (2L * L) = 1/2 for n=1; "dog dog" is not in the ref -> 0.
    image2 = 10 * ((L * L) / (2 * L * L)) / 4
    result = cider_d([["a", "cat"], ["dog", "dog"]], [[["a", "cat", "sat"], ["a", "cat"]], [["a", "dog"]]])
    assert result.per_item == pytest.approx([image1, image2])
    assert result.score == pytest.approx((image1 + image2) / 2)
    assert image1 == pytest.approx(4.2434, abs=1e-4)


def test_cider_d_scores_nothing_in_common_as_zero():
    result = cider_d([["x", "y"], ["a", "dog"]], [[["a", "cat"]], [["a", "dog"]]])
    assert result.per_item[0] == 0.0 and result.per_item[1] == pytest.approx(5.0)


def test_cider_tokenises_with_the_pack():
    direct = cider_d([["a", "cat"], ["a", "dog"]], [[["a", "cat"]], [["a", "dog"]]])
    via_pack = cider(["A cat.", "a DOG"], [["a cat"], ["A dog!"]], PACK)
    assert via_pack.per_item == pytest.approx(direct.per_item)


# -- VQA --------------------------------------------------------------------------------


def test_vqa_accuracy_by_hand():
    ten = ["cat"] * 3 + ["dog"] * 7
    # leave-one-out: the 3 "cat" subsets see 2 matches (2/3), the 7 others see 3 (1)
    assert vqa_accuracy("cat", ten, PACK) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)
    two = ["cat"] * 2 + ["dog"] * 8
    assert vqa_accuracy("Cat.", two, PACK) == pytest.approx((2 * 1 / 3 + 8 * 2 / 3) / 10)
    assert vqa_accuracy("dog", ten, PACK) == 1.0
    assert vqa_accuracy("bird", ten, PACK) == 0.0
    assert vqa_accuracy("Red.", ["red"], PACK) == 1.0  # one answer: exact match


def test_exact_match_uses_the_packs_normalisation():
    assert exact_match("  Red! ", ["red"], PACK) == 1.0
    assert exact_match("red circle", ["red"], PACK) == 0.0
    assert exact_match("blue", ["red", "blue"], PACK) == 1.0


# -- response language --------------------------------------------------------------------


def test_response_language_rate_with_lingua():
    from mpm_framework.lang_en.pack import EnglishPack

    de = WordPack()
    de.code, de.name, de.lingua_name = "de", "German", "GERMAN"
    en = EnglishPack()
    answers = ["Der Kreis ist rot und liegt auf der linken Seite.",
               "The circle is red and it is on the left side.",
               "Das Bild zeigt ein großes blaues Dreieck oben.",
               "2."]
    rate = response_language_rate(answers, de, candidates=[en, de])
    assert (rate.rate, rate.counted, rate.neutral) == (pytest.approx(2 / 3), 3, 1)
    assert response_language_rate(answers, en, candidates=[en, de]).rate == pytest.approx(1 / 3)
