"""Fixtures for the training tests: tiny image files, data files, configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

COLORS = ["red", "green", "blue", "yellow", "white", "black", "purple", "orange"]



def write_images(folder: Path, n: int, corrupt: set[int] = frozenset()) -> list[str]:
    """``n`` small PNGs named img{i}.png; indices in ``corrupt`` hold garbage bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"img{i}.png"
        if i in corrupt:
            (folder / name).write_bytes(b"this is not a png")
        else:
            Image.new("RGB", (36, 36), COLORS[i % len(COLORS)]).save(folder / name)
        names.append(name)
    return names


def pair_records(n: int, lang: str = "en") -> list[dict]:
    return [{"image": f"img{i}.png", "text": f"a {COLORS[i % len(COLORS)]} square number {i}", "lang": lang}
            for i in range(n)]


def write_jsonl(path: Path, records: list, raw_lines: dict[int, str] | None = None) -> Path:
    """JSON lines; ``raw_lines`` replaces given lines by raw text (malformed lines)."""
    raw_lines = raw_lines or {}
    lines = [raw_lines.get(i, json.dumps(r, ensure_ascii=False)) for i, r in enumerate(records)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def pairs_dir(tmp_path):
    """A folder with 32 images and pairs.jsonl describing them."""
    write_images(tmp_path, 32)
    write_jsonl(tmp_path / "pairs.jsonl", pair_records(32))
    return tmp_path


def base_config(tmp_path: Path, **run) -> dict:
    cfg = {"run": {"stage": "align", "output_dir": str(tmp_path / "run"), "max_steps": 6, "batch_size": 4,
                   "lr": 5e-3, "save_every": 3, "keep_last": 2, "log_every": 100, "progress": False,
                   "warmup_steps": 2},
           "data": {"max_length": 256}}
    cfg["run"].update(run)
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    def make(data_path: Path | None = None, kind: str = "pairs", data: dict | None = None, **run):
        cfg = base_config(tmp_path, **run)
        if data_path is not None:
            cfg["data"]["train"] = [{"path": str(data_path), "kind": kind}]
        cfg["data"].update(data or {})
        return OmegaConf.create(cfg)

    return make


@pytest.fixture(scope="session")
def helpers():
    class H:
        pass

    h = H()
    h.write_images, h.pair_records, h.write_jsonl = write_images, pair_records, write_jsonl
    return h
