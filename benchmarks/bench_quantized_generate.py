"""Greedy generation at batch 1 (64 new tokens, the ``small`` stack of the
generation suite): the peer's fp32 against ours in fp32 and with
``quantize=int8`` applied to the LLM (all linear layers but the LM head) and
the vision tower. A short hand run, not a pytest-benchmark: three rounds each::

    cd benchmarks && OMP_NUM_THREADS=1 python bench_quantized_generate.py

Prints medians and minima; the table in RESULTS.md was copied from it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch


def main(rounds: int = 3) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_support as bs
    from test_bench_generate import Setup

    from mpm_framework.quantize import quantize_linear_int8

    torch.set_num_threads(1)
    setup = Setup("small")

    def timed(fn):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), min(times)

    peer = timed(lambda: setup.peer_generate(setup.prompts[1]))
    fp32 = timed(lambda: setup.ours_generate(1))
    llm = setup.stack.llm
    head = [n for n, m in llm.hf.named_modules() if m is llm.hf.get_output_embeddings()]
    quantize_linear_int8(llm.hf, skip=head)
    quantize_linear_int8(setup.stack.vision.model)
    int8 = timed(lambda: setup.ours_generate(1))
    for name, (median, low) in (("peer fp32", peer), ("ours fp32", fp32), ("ours int8", int8)):
        print(f"{name}: median {median:.2f} s, min {low:.2f} s, {bs.NEW_TOKENS / median:.1f} tokens/s")
    print(f"ours int8 / peer fp32 (throughput, medians): {peer[0] / int8[0]:.2f}x, minima {peer[1] / int8[1]:.2f}x")


if __name__ == "__main__":
    main()
