"""One call from data files to a written report: what ``mpm compose ... eval`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from .datasets import read_eval_set
from .report import write_report
from .tasks import TASKS, check_task, run_alignment_task, run_generation_task


def _pack(code: str, stack=None):
    languages = getattr(stack, "languages", None) or {}
    if code in languages:
        return languages[code]
    from ..composition import load_language

    return load_language(code)


def evaluate(
    task: str,
    data: str | Path,
    langs: list[str],
    *,
    stack=None,
    llm=None,
    fmt: str = "auto",
    image_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    generation: dict[str, Any] | None = None,
    batch_size: int = 8,
    prompt: str | None = None,
    limit: int | None = None,
    candidates=None,
    progress: bool = True,
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``task`` in each of ``langs`` on the data at ``data``.

    Generation tasks need a ChatStack (``stack``); ``alignment`` needs only the
    pivot LLM (``llm``, else ``stack.llm``). With ``out_dir`` the JSON report,
    the markdown table, the predictions and (alignment) the PNG plot are written
    there. Returns the report dictionary."""
    if task not in TASKS:
        check_task(task, None)  # raises with the nearest task name
    if not langs:
        raise DataError("no language to evaluate: pass --lang")
    report: dict[str, Any] = {"task": task, "data": str(data), "model": model or {}, "languages": {}}
    if task != "alignment":
        report["generation"] = {k: v for k, v in (generation or {}).items() if v is not None}
    records: dict[str, list[dict[str, Any]]] = {}
    alignment_results = []
    for lang in langs:
        pack = _pack(lang, stack) if task != "alignment" else None  # the probe needs no pack
        dataset = read_eval_set(data, lang, fmt, image_root)
        check_task(task, dataset)
        if limit is not None:
            dataset.examples = dataset.examples[:limit]
        entry: dict[str, Any] = {"dataset": {"format": dataset.format, "path": str(dataset.path),
                                             "examples": len(dataset), "missing_images": len(dataset.missing_images)}}
        if task == "alignment":
            model_llm = llm if llm is not None else getattr(stack, "llm", None)
            if model_llm is None:
                raise DataError("the alignment probe needs a pivot LLM (compose one with --llm)")
            out = run_alignment_task(model_llm, dataset, batch_size=batch_size, progress=progress)
            entry.update(metrics=out["metrics"], layers=out["layers"])
            alignment_results.append(out["result"])
        else:
            if stack is None:
                raise DataError(f"task '{task}' needs a chat stack (an LLM and a vision encoder)")
            out = run_generation_task(stack, task, dataset, pack, generation, batch_size, prompt, candidates,
                                      progress)
            entry.update(metrics=out["metrics"], segmentation_route=pack.segmentation_route)
            records[lang] = out["records"]
        report["languages"][lang] = entry
    if out_dir is not None:
        if alignment_results:
            from .alignment import plot_alignment

            report["plot"] = str(plot_alignment(alignment_results, Path(out_dir) / "alignment.png"))
        report["files"] = {k: str(v) for k, v in write_report(report, out_dir, records).items()}
    return report
