"""Multimodal datasets of the toy world, in the trainer's record formats.

Records are made on demand: record ``i`` of a dataset is a pure function of
(seed, purpose, i), so a dataset of any size costs no memory, reads the same
on every pass and after a resume, and two conditions that share a dataset
see exactly the same records. Training datasets draw only training-split
scenes; :func:`eval_items` draws only held-out scenes (see ``split.py``).

- ``align``: image-text pairs ``{"image", "text", "lang"}``; the align stage
  asks for the caption with one of the record language's ``caption_prompts``.
- ``instruct``: LLaVA conversations ``{"image", "conversations", "lang"}`` --
  captioning requests and questions; a ``calibration_share`` of the records is
  in the target languages (split evenly between them), the rest in English.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpm_framework.contracts.language import LanguagePack
from mpm_framework.contracts.prompt import IMAGE_MARKER
from mpm_framework.contracts.toy_grammar import Question, Scene
from mpm_framework.errors import ConfigError
from mpm_framework.text.toy_scenes import questions_for

from .render import render
from .split import sample_split_scene, split_rng

CAPTION_TASK, VQA_TASK = "caption", "vqa"


def _record_rng(seed: int, purpose: str, index: int) -> random.Random:
    return random.Random(f"mpm-toyworld/{seed}/{purpose}/{index}")


def language_schedule(n: int, weights: Mapping[str, float], seed: int, purpose: str) -> list[str]:
    """Exactly ``round(n * share)`` records per language (largest remainders),
    in a seeded random order: a 2% share is 2% of the records, not 2% on average."""
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError(f"language weights must sum to a positive number, got {dict(weights)}: "
                          "give at least one language a share above 0")
    codes = sorted(weights)
    exact = {c: n * weights[c] / total for c in codes}
    counts = {c: int(exact[c]) for c in codes}
    rest = n - sum(counts.values())
    for c in sorted(codes, key=lambda c: exact[c] - counts[c], reverse=True)[:rest]:
        counts[c] += 1
    order = [c for c in codes for _ in range(counts[c])]
    split_rng(seed, f"{purpose}-languages").shuffle(order)
    return order


class SceneRecords(Sequence):
    """A lazily rendered dataset of training-split scenes (a ``Sequence`` of
    records, so the trainer reads it with random access and many epochs)."""

    def __init__(
        self,
        packs: Mapping[str, LanguagePack],
        languages: Sequence[str],
        seed: int,
        purpose: str,
        image_size: int = 64,
        caption_share: float = 1.0,
        noise: float = 0.0,
        noisy_langs: Sequence[str] = (),
    ) -> None:
        missing = sorted({c for c in languages if c not in packs})  # languages is a per-record schedule
        if missing:
            raise ConfigError(f"no language pack for {missing}; installed: {', '.join(sorted(packs))}. "
                              "Install the pack (pip install mpm-lang-CODE) or drop the language")
        self.packs, self.languages = packs, list(languages)
        self.seed, self.purpose, self.image_size = seed, purpose, image_size
        self.caption_share = caption_share
        # "translated" records (noisy_langs) corrupted with probability ``noise``
        self.noise, self.noisy_langs = noise, frozenset(noisy_langs)

    def __len__(self) -> int:
        return len(self.languages)

    def scene_and_image(self, index: int) -> tuple[Scene, Any, random.Random]:
        rng = _record_rng(self.seed, self.purpose, index)
        scene = sample_split_scene(rng, "train")
        return scene, render(scene, self.image_size, rng), rng

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]  # type: ignore[return-value]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        lang = self.languages[index]
        pack = self.packs[lang]
        scene, image, rng = self.scene_and_image(index)
        if self.caption_share >= 1.0:  # image-text pair (align)
            return {"image": image, "text": pack.realise_caption(scene, rng), "lang": lang}
        if rng.random() < self.caption_share:
            prompt, answer = rng.choice(pack.caption_prompts), pack.realise_caption(scene, rng)
        else:
            question = rng.choice(questions_for(scene))
            prompt, answer = pack.realise_question(question, rng), pack.realise_answer(question, rng)
        if self.noise > 0 and lang in self.noisy_langs:
            answer = _corrupt_record(self, index, answer, lang)
        return {
            "image": image,
            "conversations": [
                {"from": "human", "value": f"{IMAGE_MARKER}\n{prompt}"},
                {"from": "gpt", "value": answer},
            ],
            "lang": lang,
        }


def align_records(
    packs: Mapping[str, LanguagePack], langs: Mapping[str, float], n: int, seed: int, image_size: int = 64
) -> SceneRecords:
    """``n`` image-caption pairs; ``langs`` maps language -> share (``{"en": 1}``
    for MPM's English-only alignment)."""
    return SceneRecords(packs, language_schedule(n, langs, seed, "align"), seed, "align", image_size)


def _corrupt_record(records: SceneRecords, index: int, answer: str, lang: str) -> str:
    rng = _record_rng(records.seed, f"{records.purpose}-noise", index)  # clean records keep their stream
    if rng.random() >= records.noise:
        return answer
    scene, _, record_rng = records.scene_and_image(index)
    # the English response to the same request (record_rng replays the record's draws)
    english = records.packs["en"]
    if record_rng.random() < records.caption_share:
        record_rng.choice(records.packs[lang].caption_prompts)
        reference = english.realise_caption(scene, record_rng)
    else:
        question = record_rng.choice(questions_for(scene))
        records.packs[lang].realise_question(question, record_rng)
        reference = english.realise_answer(question, record_rng)
    return corrupt_response(answer, reference, rng)[0]


def corrupt_response(answer: str, english: str, rng: random.Random) -> tuple[str, str]:
    """A machine-translation error in one response: a dropped word, a word
    substituted by a word of the English response, or the whole response in
    English (the wrong language). Words are split on spaces, or characters
    for scripts written without them. Returns ``(response, kind)``."""
    kind = rng.choice(("drop", "substitute", "wrong-language"))
    if kind == "wrong-language":
        return english, kind
    spaced = " " in answer.strip()
    words = answer.split() if spaced else list(answer)
    if len(words) < 2:  # nothing to drop from a one-word answer: substitute it
        kind = "substitute"
    i = rng.randrange(len(words))
    if kind == "drop":
        del words[i]
    else:
        words[i] = rng.choice(english.split() or [english])
    return (" " if spaced else "").join(words), kind


def instruct_records(
    packs: Mapping[str, LanguagePack],
    n: int,
    seed: int,
    calibration_share: float = 0.0,
    targets: Sequence[str] = (),
    caption_share: float = 0.3,
    image_size: int = 64,
    langs: Mapping[str, float] | None = None,
    translation_noise: float = 0.0,
) -> SceneRecords:
    """``n`` instructions: English, plus ``calibration_share`` of target-language
    instructions split evenly over ``targets``. ``langs`` replaces that mix
    with explicit shares (the native condition)."""
    translated = langs is None  # the calibration share is the "translated" data; native data is not
    if langs is None:
        if calibration_share and not targets:
            raise ConfigError("a calibration share needs target languages: name them, or set calibration_share=0")
        if not 0 <= calibration_share < 1:
            raise ConfigError(f"calibration_share must be in [0, 1) (the share of target-language records), "
                              f"got {calibration_share}")
        langs = {"en": 1.0 - calibration_share}
        for code in targets:
            langs[code] = calibration_share / len(targets)
        langs = {c: w for c, w in langs.items() if w > 0}
    schedule = language_schedule(n, langs, seed, "instruct")
    if not 0 <= translation_noise <= 1:
        raise ConfigError(f"translation_noise must be in [0, 1] (the share of corrupted translations), "
                          f"got {translation_noise}")
    return SceneRecords(packs, schedule, seed, "instruct", image_size, caption_share=caption_share,
                        noise=translation_noise if translated else 0.0, noisy_langs=targets)


@dataclass
class EvalItem:
    """One evaluation request about a held-out scene."""

    lang: str
    task: str  # caption | vqa
    scene: Scene
    prompt: str
    image: Any
    question: Question | None = None
    scene_index: int = 0


def eval_items(
    packs: Mapping[str, LanguagePack],
    langs: Sequence[str],
    n_scenes: int,
    seed: int,
    questions_per_scene: int = 2,
    image_size: int = 64,
) -> list[EvalItem]:
    """Held-out scenes, the *same* scenes and images in every language (so
    languages are compared on equal terms): per scene one caption request and
    ``questions_per_scene`` distinct questions, realised in each language."""
    rng = split_rng(seed, "eval-scenes")
    scenes: list[tuple[Scene, Any, list[Question]]] = []
    for _ in range(n_scenes):
        scene = sample_split_scene(rng, "eval")
        image = render(scene, image_size, rng)
        qs = questions_for(scene)
        rng.shuffle(qs)
        scenes.append((scene, image, qs[:questions_per_scene]))
    items: list[EvalItem] = []
    for lang in langs:
        pack = packs[lang]
        text_rng = split_rng(seed, f"eval-text-{lang}")
        for i, (scene, image, qs) in enumerate(scenes):
            items.append(EvalItem(lang, CAPTION_TASK, scene, text_rng.choice(pack.caption_prompts), image,
                                  scene_index=i))
            for q in qs:
                items.append(EvalItem(lang, VQA_TASK, scene, pack.realise_question(q, text_rng), image, q, i))
    return items
