"""Benchmark conventions.

Every benchmark sets ``benchmark.group`` to what is compared and
``benchmark.extra_info["impl"]`` to ``"mpm"`` or ``"peer"`` (or ``"limit"``
for the machine's own ceiling), so ``benchmarks/report.py`` can put each
figure beside its peer measured in the same run. A benchmark that is a headline
figure also names itself (``key``), what it is compared with (``versus``: the
other's key), how (``ratio``: ``speedup`` = the other's time / ours, ``time``
= ours / the other's) and the ``target``; ``units`` (samples per round) makes
different amounts of work comparable.

In CI the suites run once with ``--benchmark-disable`` as a smoke test, on the
reduced "smoke" sizes; numbers come from ``python benchmarks/run.py`` (the
"small" sizes of the issue). ``MPM_BENCH_DEVICE=cuda`` runs them on a GPU
(bf16 autocast, sdpa and xformers attention); ``MPM_BENCH_SIZE`` forces a size.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_support, beside this file

import bench_support


@pytest.fixture(scope="session")
def bench_enabled(request) -> bool:
    session = getattr(request.config, "_benchmarksession", None)
    return session is not None and not session.disabled


@pytest.fixture(scope="session", autouse=True)
def _threads(bench_enabled):
    # Fixed threading so that ours and the peer's run under the same conditions;
    # the smoke run takes one thread (tiny models, and shared CI runners).
    default = (os.cpu_count() or 1) if bench_enabled else 1
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MPM_BENCH_THREADS", default)))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def bench_size(bench_enabled) -> str:
    size = os.environ.get("MPM_BENCH_SIZE") or ("small" if bench_enabled else "smoke")
    if size not in bench_support.SIZES:
        raise pytest.UsageError(f"MPM_BENCH_SIZE={size!r}: choose one of {', '.join(bench_support.SIZES)}")
    return size


@pytest.fixture(scope="session")
def bench_device() -> torch.device:
    dev = bench_support.device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("MPM_BENCH_DEVICE=cuda but no CUDA device is visible")
    return dev


@pytest.fixture
def tag(benchmark, bench_size):
    def set_tag(group: str, impl: str, **info):
        benchmark.group = group
        benchmark.extra_info.update(impl=impl, size=bench_size, device=bench_support.device().type,
                                    versions=bench_support.versions(), **info)
        # the machine is shared: the 1-minute load average when the benchmark starts, shown in its notes
        benchmark.extra_info["load"] = round(os.getloadavg()[0], 1)

    return set_tag

