"""``run.stage: package.module:StageClass`` chooses code to import: it must name
a Stage, and a run folder's saved config may not name one at all unless the
command line granted code (issue 16 leftovers)."""

import sys
import textwrap

import pytest

from mpm_framework.config.loading import resolve_config, save_config
from mpm_framework.errors import ConfigError
from mpm_framework.security import trusting_remote_code
from mpm_framework.training.run_dir import read_stage_config
from mpm_framework.training.stages import Stage, get_stage


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module that writes a marker file when imported and another when its
    ``Thing`` is called; ``GoodStage`` is a real Stage."""
    marker = tmp_path / "imported"
    called = tmp_path / "called"
    (tmp_path / "mpm_marker_mod.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        from mpm_framework.training.stages import AlignStage
        Path({str(marker)!r}).write_text("imported")

        class Thing:
            def __init__(self):
                Path({str(called)!r}).write_text("called")

        class GoodStage(AlignStage):
            name = "good-from-marker"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker, called
    sys.modules.pop("mpm_marker_mod", None)


def _run_folder(tmp_path, stage, stages=None):
    folder = tmp_path / "run" / "align"
    cfg = resolve_config(llm="tiny-llm", vision="tiny-vision",
                         recipe={"run": {"stage": stage}, **({"stages": stages} if stages else {})})
    save_config(cfg, folder / "config.yaml")
    return folder


@pytest.mark.parametrize("name", ["os:system", "subprocess:Popen", "mpm_marker_mod:Thing"])
def test_an_import_string_must_name_a_stage_and_is_never_called(name, marker_module):
    _, called = marker_module
    with pytest.raises(ConfigError, match="not a Stage"):
        get_stage(name)
    assert not called.exists()


def test_an_import_string_naming_a_stage_class_works(marker_module):
    stage = get_stage("mpm_marker_mod:GoodStage")
    assert isinstance(stage, Stage) and stage.name == "good-from-marker"


@pytest.mark.parametrize("stage", ["mpm_marker_mod:Thing", "os:system"])
def test_a_run_folder_may_not_name_code_as_its_stage(stage, tmp_path, marker_module, tiny_components):
    marker, _ = marker_module
    folder = _run_folder(tmp_path, stage)
    with pytest.raises(ConfigError, match="--trust-remote-code") as err:
        read_stage_config(folder)
    assert "config.yaml: run.stage" in str(err.value)
    assert not marker.exists()  # refused before anything was imported


def test_a_stage_key_in_a_run_folder_is_checked_too(tmp_path, marker_module, tiny_components):
    folder = _run_folder(tmp_path, "align", stages={"mpm_marker_mod:Thing": {"run": {"max_steps": 1}}})
    with pytest.raises(ConfigError, match=r"stages\.mpm_marker_mod:Thing"):
        read_stage_config(folder)


def test_registered_names_pass_and_a_granted_command_may_import(tmp_path, marker_module, tiny_components):
    assert read_stage_config(_run_folder(tmp_path / "a", "instruct")).run.stage == "instruct"
    folder = _run_folder(tmp_path / "b", "mpm_marker_mod:GoodStage")
    with trusting_remote_code():
        cfg = read_stage_config(folder)
    assert get_stage(cfg.run.stage).name == "good-from-marker"
