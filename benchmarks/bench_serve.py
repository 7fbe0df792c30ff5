"""``mpm serve`` under load: 1 / 4 / 16 concurrent clients against one server
(continuous batching) versus the same requests sent one after another.

    python benchmarks/bench_serve.py                      # "small" stack, prints the table
    python benchmarks/bench_serve.py --write-results      # ... and puts it in RESULTS.md
    python benchmarks/bench_serve.py --size smoke --requests 8 --max-tokens 8   # a quick look

The server runs in its own process (``run_server`` with the "small" ChatStack of
``bench_support.build_ours``: end-token rows of the LM head zeroed so every
request generates exactly ``--max-tokens`` tokens); clients are threads in this
process sending OpenAI chat requests with a 224 px image (as a data: URL) and
a question. Throughput is completion tokens per second of wall time; latency is
per request. Not a pytest benchmark: it measures a server, not a function.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import io
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK_BEGIN, MARK_END = "<!-- bench_serve:begin -->", "<!-- bench_serve:end -->"
QUESTIONS = ("What is in the image?", "Describe the picture.", "Was ist auf dem Bild?", "图片里有什么？",
             "Qu'est-ce qu'il y a sur l'image ?", "How many objects are there?")


def serve(size: str, port: int, threads: int, max_batch: int) -> None:
    """The server process: the benchmark stack behind ``mpm serve``'s own runner."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_support import build_ours

    from mpm_framework.cli.serve_cmd import run_server
    from mpm_framework.serving.service import ServeOptions, Service

    torch.set_num_threads(threads)
    stack = build_ours(size).eval()
    service = Service(stack, None, ServeOptions(model_id="small", max_batch=max_batch, max_queue=256,
                                                default_max_tokens=64))
    run_server(service, "127.0.0.1", port, log_level="warning")


def _image_url(seed: int, size: int = 224) -> str:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    array = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _request(i: int, max_tokens: int, images: list[str]) -> dict:
    question = QUESTIONS[i % len(QUESTIONS)]
    content = question if not images else [{"type": "image_url", "image_url": {"url": images[i % len(images)]}},
                                           {"type": "text", "text": question}]
    return {"model": "small", "temperature": 0, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}]}


def run_load(base: str, clients: int, requests: int, max_tokens: int, images: list[str]) -> dict:
    """``requests`` chat requests through ``clients`` concurrent closed-loop clients."""
    import httpx

    def one(i: int) -> tuple[float, int, bool]:
        start = time.perf_counter()
        try:
            response = http.post(f"{base}/v1/chat/completions", json=_request(i, max_tokens, images), timeout=600)
            ok = response.status_code == 200
            tokens = response.json()["usage"]["completion_tokens"] if ok else 0
        except httpx.HTTPError:
            ok, tokens = False, 0
        return time.perf_counter() - start, tokens, ok

    with httpx.Client(limits=httpx.Limits(max_connections=clients + 2)) as http:
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(requests)))
        wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {"clients": clients, "requests": requests, "failed": sum(not r[2] for r in results), "tokens": tokens,
            "wall_s": wall, "tokens_per_s": tokens / wall, "p50_s": statistics.median(latencies),
            "p95_s": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]}


def table(rows: list[dict], sequential: dict) -> str:
    lines = ["| clients | requests | failed | tokens | wall | tokens/s | vs sequential | p50 latency | p95 latency |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in [sequential, *rows]:
        name = "sequential (one after another)" if row is sequential else str(row["clients"])
        lines.append(f"| {name} | {row['requests']} | {row['failed']} | {row['tokens']} | {row['wall_s']:.1f} s | "
                     f"{row['tokens_per_s']:.1f} | {row['tokens_per_s'] / sequential['tokens_per_s']:.2f}x | "
                     f"{row['p50_s']:.2f} s | {row['p95_s']:.2f} s |")
    return "\n".join(lines)


def write_results(text: str) -> Path:
    path = HERE / "RESULTS.md"
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    block = f"{MARK_BEGIN}\n{text.strip()}\n{MARK_END}"
    if MARK_BEGIN in current:
        current = re.sub(re.escape(MARK_BEGIN) + r".*?" + re.escape(MARK_END), lambda _m: block, current, flags=re.S)
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", choices=["small", "smoke"])
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (comma-separated)")
    parser.add_argument("--requests", type=int, default=16, help="requests per level (and for the sequential run)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--text-only", action="store_true",
                        help="questions without an image (short prompts: decoding dominates, not prefill)")
    parser.add_argument("--write-results", action="store_true", help="put the table into benchmarks/RESULTS.md")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process itself
    args = parser.parse_args()
    if args.serve:
        serve(args.size, args.port, args.threads, args.max_batch)
        return 0

    import httpx

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--size", args.size, "--port", str(args.port),
                               "--threads", str(args.threads), "--max-batch", str(args.max_batch)], env=env)
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if server.poll() is not None:
                raise SystemExit("the server exited before becoming healthy")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become healthy in 10 minutes")
            time.sleep(0.5)
        images = [] if args.text_only else [_image_url(seed) for seed in range(4)]
        run_load(base, 1, 2, 4, images)  # warm-up (also fills the image-encoding cache)
        sequential = run_load(base, 1, args.requests, args.max_tokens, images)
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            rows.append(sequential if clients == 1 else
                        run_load(base, clients, args.requests, args.max_tokens, images))
            print(f"clients={clients}: {rows[-1]['tokens_per_s']:.1f} tokens/s", flush=True)
        rows = [r for r in rows if r is not sequential]
        metrics = httpx.get(f"{base}/metrics").text
    finally:
        server.terminate()
        server.wait(60)
    steps = _metric(metrics, "mpm_decode_steps_total")
    occupancy = _metric(metrics, "mpm_decode_rows_total") / steps if steps else 0.0
    best = max(rows, key=lambda r: r["clients"], default=sequential)
    summary = (
        "## Serving: continuous batching (`benchmarks/bench_serve.py`)\n\n"
        f"- {datetime.now(timezone.utc).isoformat(timespec='seconds')}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (shared with other work while measured); server torch threads {args.threads}\n"
        f"- stack: {args.size} (`bench_support.build_ours`), "
        f"{'a question without an image' if args.text_only else 'one 224 px image + a question'} per request, greedy, "
        f"{args.max_tokens} new tokens each (end tokens disabled), max batch {args.max_batch}\n"
        f"- command: `python benchmarks/bench_serve.py --size {args.size} --requests {args.requests} "
        f"--max-tokens {args.max_tokens} --clients {args.clients}{' --text-only' if args.text_only else ''}`\n"
        f"- mean rows per decode step over the run: {occupancy:.1f}\n\n"
        + table(rows, sequential) + "\n\n"
        f"{best['clients']} concurrent clients reach {best['tokens_per_s'] / sequential['tokens_per_s']:.2f}x the "
        "sequential tokens/s (target >= 4x for 16 clients on this CPU), "
        f"{sum(r['failed'] for r in rows)} failed requests below the queue limit.\n"
    )
    print(summary)
    if args.write_results:
        print(f"written to {write_results(summary)}")
    return 0


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
