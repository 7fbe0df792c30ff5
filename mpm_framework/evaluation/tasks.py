"""Evaluation tasks: generate with a stack, score per language.

``caption``       captions in the target language (the pack's caption prompt),
                  scored by BLEU, chrF and CIDEr-D against the references, plus
                  the share of captions written in the target language;
``vqa``           answers scored by exact match and VQA accuracy after the pack's
                  answer normalisation, plus the response-language rate;
``language-rate`` only the share of answers in the asked language (the MPM
                  paper's calibration check: without target-language instruction
                  data the model answers a Chinese question in English);
``alignment``     the pivot LLM's alignment probe on parallel sentences.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..contracts.language import LanguagePack
from ..errors import DataError, did_you_mean
from .datasets import EvalSet
from .metrics import bleu, chrf, cider, exact_match, response_language_rate, vqa_accuracy

TASKS = ("caption", "vqa", "language-rate", "alignment")
_TASK_DATA = {"caption": ("caption",), "vqa": ("vqa",), "language-rate": ("caption", "vqa"),
              "alignment": ("parallel",)}


def check_task(task: str, data: EvalSet) -> None:
    if task not in TASKS:
        raise DataError(f"unknown task '{task}'.{did_you_mean(task, TASKS)} Tasks: {', '.join(TASKS)}")
    if data.kind not in _TASK_DATA[task]:
        raise DataError(f"task '{task}' needs {' or '.join(_TASK_DATA[task])} data, but {data.path} "
                        f"is {data.format} ({data.kind}) data")


def _prompts(task: str, data: EvalSet, pack: LanguagePack, template: str | None) -> list[str]:
    if data.kind == "caption":
        prompt = template or pack.caption_prompts[0]
        return [prompt for _ in data.examples]
    template = template or "{question}"
    if "{question}" not in template:
        raise DataError(f"the prompt template for questions needs a '{{question}}' placeholder: {template!r}")
    return [template.format(question=ex.question) for ex in data.examples]


def _generate(stack, data: EvalSet, prompts: list[str], generation: dict[str, Any], batch_size: int,
              progress: bool) -> list[str]:
    images = [ex.image for ex in data.examples]
    return stack.generate(images, prompts, batch_size=batch_size, progress=progress, **generation)


def _language_rate(predictions: list[str], pack: LanguagePack, candidates) -> dict[str, Any]:
    rate = response_language_rate(predictions, pack, candidates)
    return {"language_rate": rate.rate, "language_rate_counted": rate.counted,
            "language_rate_neutral": rate.neutral}


def run_generation_task(
    stack,
    task: str,
    data: EvalSet,
    pack: LanguagePack,
    generation: dict[str, Any] | None = None,
    batch_size: int = 8,
    prompt: str | None = None,
    candidates=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate for every example and score: metrics plus per-example records."""
    check_task(task, data)
    if task == "alignment":
        raise DataError("the alignment task probes the LLM: use run_alignment_task")
    generation = dict(generation or {})
    prompts = _prompts(task, data, pack, prompt)
    predictions = _generate(stack, data, prompts, generation, batch_size, progress)
    metrics: dict[str, Any] = {}
    records = []
    if task == "caption":
        refs = [ex.references for ex in data.examples]
        scored = cider(predictions, refs, pack)
        metrics.update(bleu=bleu(predictions, refs, pack), chrf=chrf(predictions, refs, pack), cider=scored.score)
        for ex, p, pr, c in zip(data.examples, prompts, predictions, scored.per_item):
            records.append({"id": ex.id, "image": str(ex.image), "prompt": p, "prediction": pr,
                            "references": ex.references, "cider": c})
    elif task == "vqa":
        em = [exact_match(pr, ex.answers, pack) for ex, pr in zip(data.examples, predictions)]
        acc = [vqa_accuracy(pr, ex.answers, pack) if ex.scoring == "vqa" else e
               for ex, pr, e in zip(data.examples, predictions, em)]
        metrics.update(exact_match=sum(em) / len(em), accuracy=sum(acc) / len(acc))
        for ex, p, pr, e, a in zip(data.examples, prompts, predictions, em, acc):
            records.append({"id": ex.id, "image": None if ex.image is None else str(ex.image), "prompt": p,
                            "prediction": pr, "answers": ex.answers, "exact_match": e, "accuracy": a})
    else:
        for ex, p, pr in zip(data.examples, prompts, predictions):
            records.append({"id": ex.id, "image": None if ex.image is None else str(ex.image),
                            "prompt": p, "prediction": pr})
    metrics.update(_language_rate(predictions, pack, candidates))
    return {"metrics": metrics, "records": records}


def run_alignment_task(llm, data: EvalSet, batch_size: int = 16, progress: bool = True) -> dict[str, Any]:
    from .alignment import alignment_probe

    check_task("alignment", data)
    result = alignment_probe(llm, [p.en for p in data.examples], [p.target for p in data.examples], data.lang,
                             batch_size=batch_size, progress=progress)
    best = result.best_layer
    metrics = {"best_layer": best.layer, "retrieval_en_to_target": best.retrieval_en_to_target,
               "retrieval_target_to_en": best.retrieval_target_to_en, "mean_cosine": best.mean_cosine,
               "mean_cosine_other": best.mean_cosine_other}
    return {"metrics": metrics, "layers": [asdict(r) for r in result.layers], "result": result}

