"""Scores of generated captions and answers on held-out toy scenes (torch-free).

Per language, with that language's own pack:

``caption_f1``
    attribute F1 (:func:`scene.caption_f1`) of the caption parsed by the
    *asked* language's parser -- a caption in another language scores 0.
``vqa_acc``
    share of answers whose value, parsed by the asked language's parser,
    is the right one.
``lang_rate``
    response-language rate: share of responses (captions and answers) in the
    asked language, by the packs' language identification
    (:func:`mpm_framework.text.langid.language_rate`, numbers without letters
    such as "2." left out, empty or garbled responses counted as misses).

Two diagnostics separate *understanding* from *answering in the right
language* (the quasi-zero-shot effect): ``caption_f1_any`` and
``vqa_acc_any`` also accept content expressed in English (the better of the
asked language's and the English parser).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.text.toy_scenes import caption_f1

from .datasets import CAPTION_TASK, VQA_TASK, EvalItem

METRICS = ("caption_f1", "vqa_acc", "lang_rate")
DIAGNOSTICS = ("caption_f1_any", "vqa_acc_any")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def score_item(item: EvalItem, response: str, packs: Mapping[str, LanguagePack]) -> dict[str, Any]:
    """Per-item scores: the asked language's reading and the English one."""
    pack, english = packs[item.lang], packs["en"]
    if item.task == CAPTION_TASK:
        own = caption_f1(pack.parse_caption(response), item.scene)
        en = caption_f1(english.parse_caption(response), item.scene) if item.lang != "en" else own
        return {"score": own, "score_any": max(own, en)}
    assert item.question is not None
    gold = item.question.answer
    own = float(pack.parse_answer(response, item.question.kind) == gold)
    en = float(english.parse_answer(response, item.question.kind) == gold) if item.lang != "en" else own
    return {"score": own, "score_any": max(own, en)}


def score_responses(
    items: Sequence[EvalItem],
    responses: Sequence[str],
    packs: Mapping[str, LanguagePack],
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """``({lang: {metric: value}}, per-item rows)`` for one condition."""
    from mpm_framework.text.langid import is_language

    if len(items) != len(responses):
        raise ValueError(f"{len(items)} items but {len(responses)} responses")
    candidates = list(packs.values())
    rows: list[dict[str, Any]] = []
    for item, response in zip(items, responses):
        scores = score_item(item, response, packs)
        rows.append({
            "lang": item.lang, "task": item.task, "scene": item.scene_index, "prompt": item.prompt,
            "kind": item.question.kind if item.question else "caption",
            "gold": item.question.answer if item.question else None,
            "response": response, **scores,
            "in_language": is_language(response, item.lang, candidates),
        })
    out: dict[str, dict[str, float]] = {}
    for lang in dict.fromkeys(item.lang for item in items):
        mine = [r for r in rows if r["lang"] == lang]
        caps = [r for r in mine if r["task"] == CAPTION_TASK]
        vqa = [r for r in mine if r["task"] == VQA_TASK]
        judged = [r["in_language"] for r in mine if r["in_language"] is not None]
        out[lang] = {
            "caption_f1": _mean([r["score"] for r in caps]),
            "vqa_acc": _mean([r["score"] for r in vqa]),
            "lang_rate": _mean([float(v) for v in judged]),
            "caption_f1_any": _mean([r["score_any"] for r in caps]),
            "vqa_acc_any": _mean([r["score_any"] for r in vqa]),
            "n_captions": len(caps),
            "n_questions": len(vqa),
        }
    return out, rows


def is_valid_metric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value) and 0.0 <= value <= 1.0
