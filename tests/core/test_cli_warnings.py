"""``mpm`` prints MPM's own warnings as a tidy ``Warning: ...`` line."""

from __future__ import annotations

import warnings

import click
import pytest

from mpm_framework.cli.main import cli, main
from mpm_framework.security import RemoteCodeWarning


@pytest.fixture
def warning_command():
    @click.command("warn-twice")
    def warn_twice() -> None:
        warnings.warn("run/config.yaml sets model.llm.trust_remote_code=true: ignored", RemoteCodeWarning, stacklevel=1)
        warnings.warn("some library speaks", DeprecationWarning, stacklevel=1)

    cli.add_command(warn_twice)
    yield
    cli.commands.pop("warn-twice")


def test_mpm_warnings_print_as_one_tidy_line(warning_command, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["mpm", "warn-twice"])
    previous = warnings.showwarning
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as exit_:
            main()
    assert exit_.value.code == 0
    err = capsys.readouterr().err
    assert "Warning: run/config.yaml sets model.llm.trust_remote_code=true: ignored\n" in err
    assert "RemoteCodeWarning" not in err and "test_cli_warnings.py" not in err
    # other libraries' warnings go on to Python's machinery as before
    assert [w.category for w in others] == [DeprecationWarning]
    assert warnings.showwarning is previous  # restored after the command
