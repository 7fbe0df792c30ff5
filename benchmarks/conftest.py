"""Benchmark conventions.

Every benchmark sets ``benchmark.group`` to what is compared and
``benchmark.extra_info["impl"]`` to ``"mpm"`` or ``"peer"`` (or ``"limit"``
for the machine's own ceiling), so ``benchmarks/report.py`` can put each
figure beside its peer measured in the same run. In CI the suites run once with
``--benchmark-disable`` as a smoke test; numbers come from ``python
benchmarks/run.py``.
"""

import os

import pytest
import torch

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _threads():
    # Fixed threading so that ours and the peer's run under the same conditions.
    torch.set_num_threads(int(os.environ.get("MPM_BENCH_THREADS", os.cpu_count() or 1)))
    yield


@pytest.fixture
def tag(benchmark):
    def set_tag(group: str, impl: str, **info):
        benchmark.group = group
        benchmark.extra_info.update(impl=impl, **info)

    return set_tag
