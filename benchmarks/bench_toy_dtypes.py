"""Toy VQA accuracy and caption F1 of a trained toy model at each inference
dtype: fp32, bf16 and int8, and how often each answers exactly as fp32 does
(greedy). A hand run on a finished ``mpm demo`` folder, not a pytest-benchmark::

    cd benchmarks && OMP_NUM_THREADS=1 nice -n 0 python bench_toy_dtypes.py /tmp/s2/quick_idle
    cd benchmarks && OMP_NUM_THREADS=1 python bench_toy_dtypes.py RUN --condition mpm,native --seed 0 --write-results

The condition's trained stack (``seed<k>/conditions/<condition>``) is loaded
with the public loading API at each variant: ``mpm_framework.composition.load_stack``
as trained (fp32), with ``dtype={"llm": "bf16", "vision": "bf16"}`` (the
connector stays fp32, as when a stack is composed with those settings), and
with ``quantize={"llm": "int8", "vision": "int8"}`` (the trained weights are
loaded, then each component quantises its own linear layers: the LM head stays
fp32). The same as ``mpm compose ... chat --checkpoint RUN model.llm.quantize=int8``.

Every variant answers the demo's own held-out items (same scenes, prompts and
limits: ``Demo.generate``) and is scored by the toy world's scorer
(``scoring.score_responses``). The fp32 answers are checked against the
predictions the demo wrote. Target: VQA accuracy within 2 points of fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

VARIANTS = ("fp32", "bf16", "int8")
TARGET_POINTS = 2.0
#: load_stack's inference settings of each variant (fp32: the run as trained).
SETTINGS: dict[str, dict[str, dict[str, str]]] = {
    "fp32": {},
    "bf16": {"dtype": {"llm": "bf16", "vision": "bf16"}},
    "int8": {"quantize": {"llm": "int8", "vision": "int8"}},
}


def load_variant(folder: Path, variant: str):
    """The condition's trained stack at ``variant``."""
    from mpm_framework.composition import load_stack

    return load_stack(folder, **SETTINGS[variant])


def demo_for(run: Path):
    """The demo of ``run``'s settings (packs, profile) without running anything."""
    from mpm_toyworld.experiment import Demo, DemoSettings
    from mpm_toyworld.profiles import Profile

    settings = json.loads((run / "settings.json").read_text(encoding="utf-8"))
    profile = Profile(**settings["profile"])
    return Demo(DemoSettings(profile, list(settings["langs"]), run, progress=False))


def pooled(rows: list[dict[str, Any]], task: str) -> float:
    scores = [r["score"] for r in rows if r["task"] == task]
    return sum(scores) / len(scores) if scores else float("nan")


def measure(run: Path, condition: str, seed: int) -> dict[str, Any]:
    from mpm_toyworld.datasets import CAPTION_TASK, VQA_TASK, eval_items
    from mpm_toyworld.scoring import score_responses

    demo = demo_for(run)
    p = demo.profile
    folder = run / f"seed{seed}" / "conditions" / condition
    items = eval_items(demo.packs, list(demo.packs), p.eval_scenes, seed, p.questions_per_scene, p.image_size)
    written = [json.loads(line)["response"] for line in
               (folder / "eval" / "predictions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict[str, Any] = {"run": str(run), "condition": condition, "seed": seed, "items": len(items),
                           "vqa_items": sum(it.task == VQA_TASK for it in items), "variants": {}}
    answers: dict[str, list[str]] = {}
    for variant in VARIANTS:
        stack = load_variant(folder, variant)
        start = time.perf_counter()
        with torch.no_grad():
            responses = demo.generate(stack, items)
        seconds = time.perf_counter() - start
        metrics, rows = score_responses(items, responses, demo.packs)
        answers[variant] = responses
        same = [a == b for a, b, it in zip(responses, answers["fp32"], items)]
        vqa_same = [s for s, it in zip(same, items) if it.task == VQA_TASK]
        cap_same = [s for s, it in zip(same, items) if it.task == CAPTION_TASK]
        out["variants"][variant] = {
            "vqa_acc": pooled(rows, VQA_TASK), "caption_f1": pooled(rows, CAPTION_TASK),
            "vqa_same_as_fp32": sum(vqa_same) / len(vqa_same), "caption_same_as_fp32": sum(cap_same) / len(cap_same),
            "per_lang_vqa": {lang: m["vqa_acc"] for lang, m in metrics.items()},
            "eval_s": seconds, "load": os.getloadavg()[0],
        }
        if variant == "fp32":
            out["fp32_equals_demo_predictions"] = sum(a == b for a, b in zip(responses, written)) / len(items)
        print(f"{variant}: VQA {out['variants'][variant]['vqa_acc']:.3f}, caption F1 "
              f"{out['variants'][variant]['caption_f1']:.3f}, same as fp32: VQA "
              f"{out['variants'][variant]['vqa_same_as_fp32']:.3f} captions "
              f"{out['variants'][variant]['caption_same_as_fp32']:.3f} ({seconds:.1f} s, load "
              f"{os.getloadavg()[0]:.2f})", flush=True)
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| condition | dtype | VQA accuracy | vs fp32 (points) | caption F1 | same answer as fp32 (VQA) | "
             "same caption as fp32 | eval time | load avg | target: within 2 points |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        fp32 = result["variants"]["fp32"]["vqa_acc"]
        for variant, v in result["variants"].items():
            delta = 100 * (v["vqa_acc"] - fp32)
            met = "" if variant == "fp32" else ("met" if abs(delta) <= TARGET_POINTS else "**not met**")
            lines.append(f"| {result['condition']} | {variant} | {100 * v['vqa_acc']:.1f}% | {delta:+.1f} | "
                         f"{v['caption_f1']:.3f} | {100 * v['vqa_same_as_fp32']:.1f}% | "
                         f"{100 * v['caption_same_as_fp32']:.1f}% | {v['eval_s']:.1f} s | {v['load']:.1f} | {met} |")
    return "\n".join(lines)


def write_results(results: list[dict[str, Any]], command: str) -> None:
    from results_blocks import write_block

    first = results[0]
    langs = ", ".join(first["variants"]["fp32"]["per_lang_vqa"])
    same = ", ".join(f"{r['condition']} {100 * r['fp32_equals_demo_predictions']:.1f}%" for r in results)
    body = "\n".join([
        "## Toy VQA accuracy per inference dtype (`benchmarks/bench_toy_dtypes.py`)", "",
        f"Trained toy models (`mpm demo`, `{first['run']}`, seed {first['seed']}, one row group per condition) "
        f"answering the demo's {first['items']} held-out items ({first['vqa_items']} questions, the rest "
        f"captions; languages {langs}) at each dtype, greedy, scored by the toy world's scorer (pooled over "
        "languages). fp32 is the stack as trained (its answers equal the demo's own predictions: "
        f"{same}); bf16 casts the LLM and vision tower; int8 quantises their linear layers (torch dynamic "
        "int8, LM head fp32). 'Same answer' is exact string equality with fp32's answer to the same item. "
        "On the quick profile the models are tiny (LLM width 96, 3 layers) and accuracies low: the "
        "differences are what counts here; one point is about 4 of 420 questions.", "",
        f"- {datetime.now(timezone.utc).isoformat(timespec='seconds')}; 1 torch thread on the shared 2-core "
        f"machine (load average in the table); command `{command}`", "",
        table(results)])
    write_block("bench_toy_dtypes", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished mpm demo folder")
    parser.add_argument("--condition", default="mpm", help="condition(s), comma-separated (e.g. mpm,native)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-results", action="store_true", help="put the table into RESULTS.md")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    torch.set_num_threads(1)
    results = [measure(args.run, condition, args.seed) for condition in args.condition.split(",")]
    print(table(results))
    for result in results:
        print(json.dumps({k: v for k, v in result.items() if k != "variants"}))
    if args.write_results:
        write_results(results, "python benchmarks/bench_toy_dtypes.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
