"""A text-only probe of a pivot's cross-lingual ability (torch-free).

Before any image is involved: given a held-out scene's description *as text*,
can the pivot describe it / answer a question about it in language L? Two
directions per target language:

``L<-L``   description, instruction and answer all in L (monolingual skill);
``L<-en``  description in English, instruction and answer in L -- what the
           image features must ride on after an English-only alignment, where
           they play the part of the English description.

The multimodal numbers are bounded by these: a pivot that cannot carry an
English description into L in text will not do it from an image either.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.contracts.toy_grammar import Question, Scene
from mpm_framework.text.toy_scenes import caption_f1, questions_for

from .datasets import CAPTION_TASK, VQA_TASK
from .split import sample_split_scene, split_rng


@dataclass
class ProbeItem:
    lang: str  # the language asked and expected
    source: str  # language of the given description
    task: str
    scene: Scene
    prompt: str
    question: Question | None = None


def probe_items(packs: Mapping[str, LanguagePack], targets: Sequence[str], n_scenes: int,
                seed: int) -> list[ProbeItem]:
    rng = split_rng(seed, "probe")
    scenes = [sample_split_scene(rng, "eval") for _ in range(n_scenes)]
    items: list[ProbeItem] = []
    for lang in targets:
        pack = packs[lang]
        for source in (lang, "en"):
            text_rng = random.Random(f"mpm-toyworld/{seed}/probe/{lang}/{source}")
            for scene in scenes:
                context = packs[source].realise_caption(scene, text_rng)
                items.append(ProbeItem(lang, source, CAPTION_TASK, scene,
                                       f"{context}\n{text_rng.choice(pack.caption_prompts)}"))
                question = text_rng.choice(questions_for(scene))
                items.append(ProbeItem(lang, source, VQA_TASK, scene,
                                       f"{context}\n{pack.realise_question(question, text_rng)}", question))
    return items


def score_probe(items: Sequence[ProbeItem], responses: Sequence[str],
                packs: Mapping[str, LanguagePack]) -> dict[str, dict[str, float]]:
    """``{"zh<-en": {"caption_f1": .., "vqa_acc": ..}, ...}``."""
    sums: dict[str, dict[str, list[float]]] = {}
    for item, response in zip(items, responses, strict=True):
        pack = packs[item.lang]
        key = f"{item.lang}<-{item.source}"
        bucket = sums.setdefault(key, {"caption_f1": [], "vqa_acc": []})
        if item.task == CAPTION_TASK:
            bucket["caption_f1"].append(caption_f1(pack.parse_caption(response), item.scene))
        else:
            assert item.question is not None
            bucket["vqa_acc"].append(float(pack.parse_answer(response, item.question.kind) == item.question.answer))
    return {k: {m: sum(v) / len(v) if v else float("nan") for m, v in b.items()} for k, b in sums.items()}
