"""Where batched generation spends its time: ours (``stack.generate``, the
user-facing path) against the peer (``LlavaForConditionalGeneration.generate``)
on the generation suite's ``small`` stack and prompts, called alternately in
one process so that both see the same machine load. A hand run, not a
pytest-benchmark::

    cd benchmarks && OMP_NUM_THREADS=1 nice -n 0 python profile_generate.py --batch 8 --rounds 3
    cd benchmarks && OMP_NUM_THREADS=1 python profile_generate.py --batch 8 --rounds 1 --profile

Prints per round the wall time of both, then the split of one call into
prompt work (image encoding, prefill) and decode steps (per step), and with
``--profile`` torch.profiler's top operators and cProfile's top Python
functions of one call of each. The findings are kept in ``notes.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

import torch


class _Timer:
    """Wall time of every call of a wrapped function."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append(time.perf_counter() - start)

        return timed


def split_ours(setup, batch: int) -> dict[str, float]:
    """One call of ours, timed by phase (the LLM's prefill and decode, the vision encoding)."""
    llm, stack = setup.stack.llm, setup.stack
    timers = {name: _Timer() for name in ("encode_images", "prefill", "decode")}
    originals = {"encode_images": stack.encode_images, "prefill": llm.prefill, "decode": llm.decode}
    stack.encode_images = timers["encode_images"].wrap(originals["encode_images"])
    llm.prefill = timers["prefill"].wrap(originals["prefill"])
    llm.decode = timers["decode"].wrap(originals["decode"])
    try:
        start = time.perf_counter()
        setup.ours_generate(batch)
        total = time.perf_counter() - start
    finally:
        for name in originals:
            delattr(stack if name == "encode_images" else llm, name)
    decode = timers["decode"].calls
    return {"total": total, "images": sum(timers["encode_images"].calls), "prefill": sum(timers["prefill"].calls),
            "decode": sum(decode), "steps": len(decode), "per_step": statistics.median(decode) if decode else 0.0,
            "other": total - sum(sum(t.calls) for t in timers.values())}


def split_peer(setup, batch: int) -> dict[str, float]:
    """One call of the peer: its first forward (image encoding + prefill) and the decode steps."""
    calls: list[float] = []
    started: list[float] = []
    pre = setup.peer.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
    post = setup.peer.register_forward_hook(lambda *_: calls.append(time.perf_counter() - started[-1]))
    try:
        start = time.perf_counter()
        setup.peer_generate(setup.prompts[batch])
        total = time.perf_counter() - start
    finally:
        pre.remove()
        post.remove()
    decode = calls[1:]
    return {"total": total, "images": 0.0, "prefill": calls[0], "decode": sum(decode), "steps": len(decode),
            "per_step": statistics.median(decode) if decode else 0.0, "other": total - sum(calls)}


def profile(fn, label: str, rows: int = 18) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n== torch.profiler, {label}: top operators by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    host = cProfile.Profile()
    host.enable()
    fn()
    host.disable()
    out = io.StringIO()
    pstats.Stats(host, stream=out).sort_stats("tottime").print_stats(rows)
    print(f"== cProfile, {label}: top Python functions by own time")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, choices=[1, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="small")
    parser.add_argument("--profile", action="store_true", help="also run torch.profiler and cProfile once each")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_bench_generate import Setup

    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    setup = Setup(args.size)  # builds both, checks the answers agree (also a warm-up)
    print(f"answers agree: {setup.matches}")
    ours, peer = [], []
    for i in range(args.rounds):
        a, b = split_ours(setup, args.batch), split_peer(setup, args.batch)
        ours.append(a)
        peer.append(b)
        print(f"round {i}: ours {a['total']:.2f} s, peer {b['total']:.2f} s (load {os.getloadavg()[0]:.2f})")
    for name, runs in (("ours", ours), ("peer", peer)):
        mid = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name}: median {mid['total']:.2f} s (min {min(r['total'] for r in runs):.2f}); images "
              f"{mid['images']:.3f} s, prefill {mid['prefill']:.3f} s, {mid['steps']:.0f} decode steps "
              f"{mid['decode']:.2f} s ({1e3 * mid['per_step']:.1f} ms/step), rest {mid['other']:.3f} s")
    ratio = statistics.median(r["total"] for r in peer) / statistics.median(r["total"] for r in ours)
    best = min(r["total"] for r in peer) / min(r["total"] for r in ours)
    print(f"batch {args.batch}: ours {ratio:.2f}x the peer's throughput (medians), {best:.2f}x (minima); "
          f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.profile:
        profile(lambda: setup.ours_generate(args.batch), f"ours, batch {args.batch}")
        profile(lambda: setup.peer_generate(setup.prompts[args.batch]), f"peer, batch {args.batch}")


if __name__ == "__main__":
    main()
