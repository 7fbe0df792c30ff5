"""``mpm_framework.testing.one_thread``: the one copy of the one-thread fixture,
autouse wherever a conftest imports it (tests/conftest.py does)."""

import torch

from mpm_framework import testing


def test_one_thread_is_active_in_the_core_suite():
    assert torch.get_num_threads() == 1


def test_one_thread_restores_the_previous_setting():
    torch.set_num_threads(2)
    try:
        gen = testing.one_thread.__wrapped__()  # the fixture's generator, outside pytest's wiring
        next(gen)
        assert torch.get_num_threads() == 1
        next(gen, None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
