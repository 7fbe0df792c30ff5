"""Run the benchmark suites and write benchmarks/RESULTS.md.

    python benchmarks/run.py                 # CPU -> RESULTS.md
    python benchmarks/run.py --device cuda   # on a GPU machine -> RESULTS-cuda.md (kept separately)
    python benchmarks/run.py -k generate     # a subset

The "small" model sizes of the issue are used (``--size smoke`` for a quick
look). Each figure is a ratio to the peer measured in the same run;
``notes.md`` (what was tried) is appended to the results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="small", choices=["small", "smoke"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: all cores; 1 on a machine shared with other work, where "
                             "multi-threaded kernels stall waiting for a busy core)")
    parser.add_argument("-k", default=None, help="pytest -k expression to select benchmarks")
    args = parser.parse_args()
    suffix = "" if args.device == "cpu" else f"-{args.device}"
    if args.size != "small":
        suffix += f"-{args.size}"
    json_path = HERE / f"results{suffix}.json"
    env = dict(os.environ, MPM_BENCH_DEVICE=args.device, MPM_BENCH_SIZE=args.size)
    if args.threads:
        env["MPM_BENCH_THREADS"] = str(args.threads)
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-p", "no:randomly", "--benchmark-enable",
           "--benchmark-only", f"--benchmark-json={json_path}", "-q"]
    if args.k:
        cmd += ["-k", args.k]
    code = subprocess.call(cmd, env=env)
    if json_path.exists():
        out = HERE / f"RESULTS{suffix}.md"
        subprocess.check_call([sys.executable, str(HERE / "report.py"), str(json_path), str(out),
                               str(HERE / "notes.md")])
        print(f"wrote {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
