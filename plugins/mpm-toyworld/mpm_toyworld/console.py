"""What ``mpm demo`` shows on the terminal, and the CPU share of each worker (torch-free).

The terminal gets one progress display for the job graph; everything a job
prints -- the trainer's per-stage parameter tables and step bars,
transformers' loading bars, DeepSpeed's accelerator warning, at the file
descriptor level so that C libraries and child loggers are caught too -- goes
to that job's log file (``--verbose`` leaves it on the terminal).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under
    ``taskset`` or a container's cpuset), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """torch threads for each of ``workers`` parallel processes: their share of
    the available cores, at least one. Every worker taking every core
    oversubscribes the CPU -- OpenMP kernels then wait on threads that another
    process holds, which slows a run far beyond its fair share under load."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def limit_threads(threads: int) -> None:
    """Size this process's torch (intra- and inter-op) pools and tell the
    OpenMP/MKL runtimes of libraries started later."""
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel op
        torch.set_num_interop_threads(threads)


@contextlib.contextmanager
def redirected(path: Path) -> Iterator[None]:
    """Send this process's output (``sys.stdout``/``sys.stderr`` and file
    descriptors 1 and 2) to ``path`` (appended) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "a", encoding="utf-8", buffering=1) as log:
        saved = [os.dup(1), os.dup(2)]
        old_out, old_err = sys.stdout, sys.stderr
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
            yield
        finally:
            log.flush()
            sys.stdout, sys.stderr = old_out, old_err
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
