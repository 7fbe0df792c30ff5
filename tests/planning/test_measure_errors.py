"""``mpm plan --measure`` fails with an error the CLI prints cleanly (an
MPMError, still a RuntimeError for old callers) that says what to do."""

import pytest
from omegaconf import OmegaConf

from mpm_framework.errors import MPMError
from mpm_framework.planning import measure


def test_missing_proc_field_says_to_plan_without_measuring():
    with pytest.raises(MPMError, match="without --measure") as info:
        measure._status_kib("NoSuchField")
    assert isinstance(info.value, RuntimeError)


def test_failed_measurement_subprocess_shows_its_error_and_what_to_do(tmp_path):
    # a config the child cannot build: the LLM is not registered anywhere
    cfg = OmegaConf.create({"model": {"llm": {"name": "no-such-llm"}}})
    with pytest.raises(MPMError, match=r"(?s)without --measure.*no-such-llm") as info:
        measure.measure_in_subprocess(cfg, 1, 8)
    assert isinstance(info.value, RuntimeError)
