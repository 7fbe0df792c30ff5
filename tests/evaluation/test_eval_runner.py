"""evaluate() end to end with an oracle in place of the model.

``OracleStack`` answers with a reference (or a fixed wrong text): a stand-in
for ``ChatStack.generate`` so that the scoring path — readers, the pack's
word segmentation, metrics, language ID, the report — can be checked against known
numbers. The model paths are covered by test_eval_cli.py with real stacks."""

from __future__ import annotations

import json

import pytest

from mpm_framework.evaluation import evaluate
from mpm_framework.lang_en.pack import EnglishPack


class OracleStack:
    def __init__(self, answers: dict[str, str], languages) -> None:
        self.answers, self.languages, self.calls = answers, languages, []

    def generate(self, images, questions, batch_size=8, progress=False, **generation):
        self.calls.append((list(images), list(questions), generation))
        return [self.answers[str(getattr(img, "stem", img))] for img in images]


def test_perfect_captions_score_full_bleu_and_rate(xm3600, tmp_path):
    refs = {json.loads(line)["image/key"]: json.loads(line)["en"]["caption"][0]
            for line in (xm3600 / "captions.jsonl").read_text().splitlines()}
    stack = OracleStack(refs, {"en": EnglishPack()})
    report = evaluate("caption", xm3600, ["en"], stack=stack, out_dir=tmp_path, progress=False,
                      generation={"max_new_tokens": 7}, candidates=["en", "de"])
    metrics = report["languages"]["en"]["metrics"]
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["chrf"] == pytest.approx(100.0)
    assert metrics["cider"] > 0 and metrics["language_rate"] == 1.0
    _images, prompts, generation = stack.calls[0]
    assert prompts == [EnglishPack.caption_prompts[0]] * 3 and generation == {"max_new_tokens": 7}
    assert (tmp_path / "caption.md").exists() and (tmp_path / "caption_en_predictions.jsonl").exists()
    route = report["languages"]["en"]["segmentation_route"]  # which word segmentation the metrics used
    assert route == EnglishPack().segmentation_route and f"words: {route}" in (tmp_path / "caption.md").read_text()


def test_vqa_accuracy_and_prompt_template(own_vqa, tmp_path):
    answers = {"a": "Red.", "b": "no", "None": "four"}
    stack = OracleStack(answers, {"en": EnglishPack()})
    report = evaluate("vqa", own_vqa, ["en"], stack=stack, progress=False,
                      prompt="{question} Answer with one word.", candidates=["en", "de"])
    metrics = report["languages"]["en"]["metrics"]
    # "Red." vs 6 x red / 4 x blue: consensus 1.0; "no" vs "yes": 0; "four" vs "four": 1
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["exact_match"] == pytest.approx(2 / 3)
    assert stack.calls[0][1][0] == "What color is it? Answer with one word."


def test_language_rate_catches_answers_in_the_pivot_language(maxm, xm3600, tmp_path):
    pack = pytest.importorskip("mpm_lang_zh.pack").ChinesePack()
    english = {"000411001ff7dd4f": "The car is red.", "0006ba4d54a5ad42": "两只狗。"}
    stack = OracleStack(english, {"zh": pack, "en": EnglishPack()})
    report = evaluate("language-rate", maxm, ["zh"], stack=stack, image_root=xm3600 / "images", progress=False,
                      candidates=["en", pack])
    assert report["languages"]["zh"]["metrics"]["language_rate"] == pytest.approx(0.5)
