"""Greedy generation at batch 1 and 8 (64 new tokens, the ``small`` stack and
prompts of the generation suite): the peer's fp32 against ours in fp32, bf16
(the LLM and vision tower cast, as ``model.llm.dtype=bf16`` /
``model.vision.dtype=bf16`` build them) and int8 (``quantize=int8`` applied to
the LLM's linear layers but the LM head, and to the vision tower). A short hand
run, not a pytest-benchmark: a few rounds each, ours and the peer alternately::

    cd benchmarks && OMP_NUM_THREADS=1 python bench_quantized_generate.py [--batch 1,8] [--rounds 3] [--write-results]

Prints medians and minima; ``--write-results`` puts the table into RESULTS.md
(block ``bench_quantized_generate``). Answer agreement and toy accuracy per
dtype are ``bench_toy_dtypes.py``'s.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

TARGETS = {("int8", 1): 1.8, ("fp32", 8): 1.0}  # the issue's, as ours / the peer's fp32 tokens/s


def variants(stack):
    """(name, stack) for fp32, bf16 and int8 (the latter two converted copies)."""
    from mpm_framework.quantize import quantize_linear_int8

    bf16 = copy.deepcopy(stack)
    bf16.llm.to(torch.bfloat16)
    bf16.vision.to(torch.bfloat16)
    int8 = copy.deepcopy(stack)
    hf = int8.llm.hf
    head = [n for n, m in hf.named_modules() if m is hf.get_output_embeddings()]
    quantize_linear_int8(hf, skip=head)
    quantize_linear_int8(int8.vision.model)
    return {"fp32": stack, "bf16": bf16, "int8": int8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_support as bs
    from test_bench_generate import Setup

    torch.set_num_threads(1)
    setup = Setup("small")
    stacks = variants(setup.stack)
    loads = [os.getloadavg()[0]]
    rows = []
    for batch in (int(b) for b in args.batch.split(",")):
        times: dict[str, list[float]] = {"peer fp32": [], **{f"ours {v}": [] for v in stacks}}
        for _ in range(args.rounds):  # one round of each in turn: load drift hits all alike
            for name in times:
                start = time.perf_counter()
                if name == "peer fp32":
                    setup.peer_generate(setup.prompts[batch])
                else:
                    setup.stacks["sdpa"] = stacks[name.split()[1]]  # what ours_generate runs
                    setup.ours_generate(batch)
                times[name].append(time.perf_counter() - start)
            loads.append(os.getloadavg()[0])
        peer = statistics.median(times["peer fp32"]), min(times["peer fp32"])
        for name, values in times.items():
            median, low = statistics.median(values), min(values)
            tokens = batch * bs.NEW_TOKENS / median
            target = TARGETS.get((name.split()[1], batch)) if name.startswith("ours") else None
            ratio = peer[0] / median
            met = "" if target is None else (f">= {target}x: " + ("met" if ratio >= target else "**not met**"))
            rows.append(f"| {batch} | {name} | {median:.2f} s | {low:.2f} s | {tokens:.1f} | {ratio:.2f}x "
                        f"(minima {peer[1] / low:.2f}x) | {met} |")
            print(rows[-1], flush=True)
    setup.stacks["sdpa"] = stacks["fp32"]
    table = ["| batch | impl | median | min | tokens/s (median) | vs peer fp32 | target |",
             "|---|---|---|---|---|---|---|", *rows]
    print("\n".join(table))
    print(f"load average during the run: {min(loads):.1f}-{max(loads):.1f}")
    if args.write_results:
        from results_blocks import write_block

        write_block("bench_quantized_generate", "\n".join([
            "## Generation per dtype (`benchmarks/bench_quantized_generate.py`, hand run)", "",
            f"Greedy generation of 64 tokens on the `small` stack (the generation suite's prompts), "
            f"{args.rounds} rounds of each, ours and the peer in turn; "
            f"{datetime.now(timezone.utc).isoformat(timespec='minutes')}, 1 thread, on the shared 2-core "
            f"machine, load average {min(loads):.1f}-{max(loads):.1f}. bf16 casts the LLM and vision tower "
            "(the connector stays fp32); int8 = `quantize_linear_int8` on the LLM (all linear layers but "
            "the LM head) and the vision tower: torch's dynamic int8 (see docs/inference-memory.md). "
            "The peer runs fp32 only: transformers' int8 integrations (optimum-quanto, torchao) ran "
            "slower than fp32 on this CPU (docs/inference-memory.md).", "",
            f"- command: `python benchmarks/bench_quantized_generate.py --batch {args.batch} --rounds "
            f"{args.rounds} --write-results`", "", *table, "",
            "Answer agreement with fp32 and toy VQA accuracy per dtype: the toy-accuracy table below "
            "(`bench_toy_dtypes.py`); here the end tokens are disabled, so answers are random byte tokens."]))


if __name__ == "__main__":
    main()
