"""docs/plugins.md runs: its ``python`` blocks are executed in order in one
module, ``mpm_patch_example`` (the name their import strings use), like a
doctest; the ``test_*`` functions they define run with the real fixtures."""

import inspect
import re
import sys
import types
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
MODULE = "mpm_patch_example"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture
def doc_module():
    module = types.ModuleType(MODULE)
    module.__file__ = str(DOC)
    sys.modules[MODULE] = module
    yield module
    del sys.modules[MODULE]


def test_the_guide_has_snippets():
    assert len(_blocks()) >= 8


def test_every_python_snippet_runs(doc_module, mpm_plugin, tiny_components):
    from mpm_framework.plugins import get_plugin_manager

    for i, block in enumerate(_blocks()):
        try:
            exec(compile(block, f"{DOC}:python block {i + 1}", "exec"), doc_module.__dict__)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"docs/plugins.md python block {i + 1} failed: {exc!r}") from exc
        if i == 0:  # the registration block: register the module as the plugin it describes
            if not get_plugin_manager().is_registered(doc_module):
                mpm_plugin(doc_module, name=MODULE)
    fixtures = {"mpm_plugin": lambda *a, **k: None, "tiny_components": None}  # both already active
    tests = [f for name, f in vars(doc_module).items() if name.startswith("test_") and callable(f)]
    assert tests, "the guide shows a test"
    for test in tests:
        test(**{p: fixtures[p] for p in inspect.signature(test).parameters})


def test_the_guides_dtype_choice_fails_cleanly_at_show_config(doc_module, mpm_plugin, tiny_components):
    """What the guide claims of a ``Dtype`` field, through the real CLI: an
    error naming the choices, no traceback."""
    from click.testing import CliRunner

    from mpm_framework.cli.main import cli

    exec(compile(_blocks()[0], "block 1", "exec"), doc_module.__dict__)
    mpm_plugin(doc_module, name=MODULE)
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "patch-example",
                                      "model.vision.dtype=fp8", "show-config"])
    assert result.exit_code != 0 and "Allowed: fp32, bf16, fp16" in result.output
    assert "Traceback" not in result.output
