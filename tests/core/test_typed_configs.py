"""What a component's ``from_config`` receives (its config dataclass, converted by
the core in one place), the one dtype table, and BuildContext holding only
facts that someone reads (issue 18, item 1)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from mpm_framework.composition import build_component, compose
from mpm_framework.config.choices import DTYPES, Dtype, dtype_name, torch_dtype
from mpm_framework.contracts.base import BuildContext
from mpm_framework.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

# A vision encoder whose config has a nested dataclass; from_config records what it got.
_MODULE = textwrap.dedent("""
    from dataclasses import dataclass, field

    from mpm_framework.config.choices import Dtype, torch_dtype
    from mpm_framework.hookspecs import hookimpl
    from mpm_framework.testing import TinyVision, TinyVisionConfig

    RECEIVED = []

    @dataclass
    class Sizes:
        image_size: int = 32
        hidden_size: int = 24

    @dataclass
    class RecordingConfig:
        name: str = "recording-vision"
        sizes: Sizes = field(default_factory=Sizes)
        dtype: Dtype = "fp32"
        width_from: str = "${.dtype}"  # an interpolation: resolved before the plugin sees it

    class RecordingVision(TinyVision):
        @classmethod
        def from_config(cls, config, context):
            RECEIVED.append(config)
            sizes = config.sizes
            tiny = TinyVisionConfig(image_size=sizes.image_size, hidden_size=sizes.hidden_size)
            return cls(tiny).to(torch_dtype(config.dtype))

    @hookimpl
    def mpm_register_vision_encoders(register):
        register("recording-vision", "mpm_typed_config_test:RecordingVision",
                 config="mpm_typed_config_test:RecordingConfig")
""")


@pytest.fixture
def recording(tmp_path, mpm_plugin, tiny_components, monkeypatch):
    (tmp_path / "mpm_typed_config_test.py").write_text(_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mpm_typed_config_test

    mpm_plugin(mpm_typed_config_test, name="mpm-typed-config-test")
    yield mpm_typed_config_test
    sys.modules.pop("mpm_typed_config_test", None)


def test_from_config_receives_the_config_dataclass(recording):
    stack = compose(llm="tiny-llm", vision="recording-vision",
                    overrides=["model.vision.sizes.hidden_size=16", "model.vision.dtype=bf16"])
    (config,) = recording.RECEIVED
    assert type(config) is recording.RecordingConfig and not isinstance(config, DictConfig)
    assert type(config.sizes) is recording.Sizes and config.sizes.hidden_size == 16
    assert config.width_from == "bf16"  # interpolations resolved
    assert stack.vision.hidden_size == 16 and next(stack.vision.parameters()).dtype == torch.bfloat16
    build_component("vision", "recording-vision", {"sizes": {"image_size": 16}})
    assert type(recording.RECEIVED[-1]) is recording.RecordingConfig
    assert recording.RECEIVED[-1].sizes.image_size == 16


def test_builtin_components_get_their_dataclass(tiny_components, monkeypatch):
    from mpm_framework.connectors.config import MLPConfig
    from mpm_framework.connectors.modules import MLPConnector
    from mpm_framework.testing import TinyLLM, TinyLLMConfig, TinyVision, TinyVisionConfig

    seen = []
    for cls in (TinyLLM, TinyVision, MLPConnector):
        def spy(klass, config, context, _original=cls.__dict__["from_config"].__func__):
            seen.append(config)
            return _original(klass, config, context)

        monkeypatch.setattr(cls, "from_config", classmethod(spy))
    compose(llm="tiny-llm", vision="tiny-vision")
    assert [type(c) for c in seen] == [TinyLLMConfig, TinyVisionConfig, MLPConfig]


def test_one_dtype_table_without_torch_at_import():
    assert DTYPES == typing.get_args(Dtype) == ("fp32", "bf16", "fp16")
    assert [torch_dtype(n) for n in DTYPES] == [torch.float32, torch.bfloat16, torch.float16]
    assert [dtype_name(torch_dtype(n)) for n in DTYPES] == list(DTYPES)
    assert dtype_name(torch.float64) is None
    with pytest.raises(ConfigError, match=r"'model.llm.dtype'.*Did you mean 'bf16'.*Allowed: fp32, bf16, fp16"):
        torch_dtype("bf61", "model.llm.dtype")
    code = "import sys, mpm_framework.config.choices; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_dtype_table_is_written_twice():
    """Name -> torch dtype maps live in config/choices.py only (tests may spell expectations out)."""
    table = re.compile(r"""["']bf16["']\s*:\s*torch\.bfloat16""")
    folders = ["mpm_framework", "plugins", "languages", "examples", "benchmarks"]
    found = [str(p.relative_to(ROOT)) for folder in folders for p in (ROOT / folder).rglob("*.py")
             if "/build/" not in str(p) and "/tests/" not in str(p) and table.search(p.read_text(encoding="utf-8"))]
    assert found == []


def test_every_build_context_field_is_read():
    """BuildContext carries only facts some component reads (``context.<field>``)."""
    sources = [p.read_text(encoding="utf-8") for folder in ("mpm_framework", "plugins", "examples")
               for p in (ROOT / folder).rglob("*.py") if "/tests/" not in str(p)]
    read = {m for text in sources for m in re.findall(r"\bcontext\.(\w+)", text)}
    fields = {f.name for f in dataclasses.fields(BuildContext)}
    assert fields <= read, f"unread BuildContext fields: {sorted(fields - read)}"


_DICT_STYLE_MODULE = textwrap.dedent("""
    from dataclasses import dataclass

    from mpm_framework.hookspecs import hookimpl
    from mpm_framework.testing import TinyVision, TinyVisionConfig

    @dataclass
    class OldStyleConfig:
        name: str = "old-style-vision"
        hidden_size: int = 24

    class OldStyleVision(TinyVision):
        @classmethod
        def from_config(cls, config, context):
            return cls(TinyVisionConfig(hidden_size=config.get("hidden_size", 24)))  # written for a DictConfig

    @hookimpl
    def mpm_register_vision_encoders(register):
        register("old-style-vision", "mpm_old_style_test:OldStyleVision", config="mpm_old_style_test:OldStyleConfig")
""")


def test_a_plugin_reading_its_config_like_a_dict_is_told_what_changed(tmp_path, mpm_plugin, tiny_components,
                                                                        monkeypatch):
    """A third-party plugin written for the DictConfig from_config used to get fails with
    a PluginError that names it and says to use attribute access, not an AttributeError."""
    from mpm_framework.errors import PluginError

    (tmp_path / "mpm_old_style_test.py").write_text(_DICT_STYLE_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mpm_old_style_test

    mpm_plugin(mpm_old_style_test, name="mpm-old-style-test")
    try:
        with pytest.raises(PluginError, match=r"plugin mpm-old-style-test: vision 'old-style-vision' reads its "
                                              r"config like a dict .*write config.field"):
            compose(llm="tiny-llm", vision="old-style-vision")
    finally:
        sys.modules.pop("mpm_old_style_test", None)
