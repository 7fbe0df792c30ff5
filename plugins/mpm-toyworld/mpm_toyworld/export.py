"""Toy-world data as files in the documented formats (``docs/data-formats.md``).

``mpm demo`` trains from records made on demand; it also writes a sample of
them here so the same data can be trained on with ``mpm compose ... train``
(``examples/recipes/toy.yaml``) or inspected by eye.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpm_framework.contracts.language import LanguagePack

from .datasets import align_records, instruct_records


def write_jsonl(records: Sequence[dict[str, Any]], path: Path, image_prefix: str) -> Path:
    """``path`` (JSON lines) with each record's PIL image saved as a PNG next
    to it and referenced by a relative path."""
    images = path.parent / "images"
    images.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(len(records)):
            record = dict(records[i])
            name = f"{image_prefix}_{i:06d}.png"
            record["image"].save(images / name)
            record["image"] = f"images/{name}"
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def export_data(packs: Mapping[str, LanguagePack], targets: Sequence[str], out: Path, n: int, seed: int,
                calibration_share: float, image_size: int = 64) -> dict[str, Path]:
    """English align pairs and English + calibration-share instructions (the
    MPM condition's data), ``n`` records each."""
    out.mkdir(parents=True, exist_ok=True)
    align = align_records(packs, {"en": 1.0}, n, seed, image_size)
    instruct = instruct_records(packs, n, seed, calibration_share=calibration_share, targets=list(targets),
                                image_size=image_size)
    return {
        "align": write_jsonl(align, out / "align_en.jsonl", "align"),
        "instruct": write_jsonl(instruct, out / "instruct.jsonl", "instruct"),
    }
