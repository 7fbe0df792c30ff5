"""Seeded construction: random initialisation that follows the run's seed.

A component built from the global RNG gets whatever state earlier code left
there, so two runs with the same ``run.seed`` could start from different
weights. :func:`seeded` builds inside forked RNGs seeded from ``(seed, name)``:
the same seed gives the same weights whatever was drawn before, different
seeds give different ones, and the caller's RNG streams are left untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator


def derive_seed(seed: int, name: str) -> int:
    """A 63-bit seed that is a function of ``(seed, name)`` only."""
    digest = hashlib.sha256(f"mpm-seed/{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextlib.contextmanager
def seeded(seed: int, name: str) -> Iterator[int]:
    """Run the block with torch's CPU RNG, ``random`` and ``numpy.random`` seeded
    from ``(seed, name)``; their previous states are restored afterwards."""
    import numpy as np
    import torch

    value = derive_seed(seed, name)
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(value)  # CPU only: CUDA's RNG is not forked
        random.seed(value)
        np.random.seed(value & 0xFFFFFFFF)
        try:
            yield value
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
