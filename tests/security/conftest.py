"""Fixtures for the security tests: a pickled payload that writes a marker file,
and a small image-caption data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


class Payload:
    """Unpickling this writes ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


def _poison(file: Path, marker: Path) -> None:
    """Add a payload to a torch state file, keeping everything else it holds; checks
    the payload is live (an ordinary unpickling runs it) and removes its marker."""
    state = torch.load(file, map_location="cpu", weights_only=False)  # a file the test itself just wrote
    state["mpm_test_payload"] = Payload(marker)
    torch.save(state, file)
    torch.load(file, map_location="cpu", weights_only=False)
    assert marker.is_file(), "the test payload did not run under an ordinary torch.load"
    marker.unlink()


@pytest.fixture
def payload():
    return Payload


@pytest.fixture
def poison():
    """``poison(file, marker)``: put a live marker-writing payload into a torch state file."""
    return _poison


@pytest.fixture
def pairs(tmp_path) -> Path:
    """8 small images and pairs.jsonl describing them; returns the jsonl path."""
    from PIL import Image

    colors = ["red", "green", "blue", "yellow"]
    lines = []
    for i in range(8):
        Image.new("RGB", (36, 36), colors[i % 4]).save(tmp_path / f"img{i}.png")
        lines.append(json.dumps({"image": f"img{i}.png", "text": f"a {colors[i % 4]} square {i}", "lang": "en"}))
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
