"""``mpm lang new --translate-with MT_DIR``: a first draft of a pack's texts by
a local seq2seq MT checkpoint, through the records translation of ``mpm
translate`` (:func:`mpm_framework.training.translate.translate_records`).

Every machine-translated entry is marked ``"machine-translated"`` for a
speaker's review (``mpm lang check`` lists them); a phrase whose placeholders
(``{path}``) did not survive translation keeps its English text and stays
``"untranslated"``. The English side of the calibration pairs is never touched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .scaffold import Texts

_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def machine_translate(texts: Texts, target: str, translator: Any, *, batch_size: int = 16) -> Texts:
    """``texts`` with every translatable entry drafted by ``translator`` (a
    :class:`~mpm_framework.training.translate.Translator`)."""
    from ..training.translate import translate_records

    keys: list[tuple[str, Any]] = []
    records: list[dict[str, str]] = []
    for i, prompt in enumerate(texts.caption_prompts):
        keys.append(("prompt", i))
        records.append({"text": prompt})
    for key, phrase in texts.phrases.items():
        keys.append(("phrase", key))
        records.append({"text": phrase})
    for i, (q_en, a_en, _, _) in enumerate(texts.pairs):
        keys += [("instruction", i), ("response", i)]
        records += [{"text": q_en}, {"text": a_en}]
    out = [r["text"] for r in translate_records(records, translator, target, batch_size=batch_size)]

    prompts, phrases = list(texts.caption_prompts), dict(texts.phrases)
    pairs = [list(p) for p in texts.pairs]
    review = dict(texts.review)
    for (kind, where), source, draft in zip(keys, records, out, strict=True):
        if not draft.strip():  # keep the English text (still untranslated)
            continue
        if kind == "prompt":
            prompts[where] = draft
            review[f"caption prompt {where + 1}"] = "machine-translated"
        elif kind == "phrase":
            if sorted(_PLACEHOLDER.findall(draft)) == sorted(_PLACEHOLDER.findall(source["text"])):
                phrases[where] = draft
                review[where] = "machine-translated"
        else:
            pairs[where][2 if kind == "instruction" else 3] = draft
    for i, pair in enumerate(pairs):
        if pair[2] != pair[0] or pair[3] != pair[1]:
            review[f"calibration {i + 1}"] = "machine-translated"
    return Texts(prompts, phrases, [tuple(p) for p in pairs], review)  # type: ignore[misc]


def seq2seq_translator(model_dir: str | Path, **kwargs: Any) -> Any:
    """The ``mpm translate --translator seq2seq --model MT_DIR`` engine."""
    from ..training.translate import Seq2SeqTranslator

    return Seq2SeqTranslator(model_dir, **kwargs)
