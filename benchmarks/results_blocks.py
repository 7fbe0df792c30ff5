"""Sections of RESULTS.md that hand-run scripts own, between markers::

    <!-- NAME:begin -->
    ...
    <!-- NAME:end -->

``bench_serve.py``, ``bench_load.py``, ``profile_generate.py`` and
``bench_toy_dtypes.py`` write their tables this way; ``report.py`` (run by
``run.py``) regenerates the pytest-benchmark part of the file and keeps every
marked block, so regenerating never drops a section.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_BLOCK = re.compile(r"<!-- ([\w.-]+):begin -->.*?<!-- \1:end -->", re.S)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def blocks(text: str) -> dict[str, str]:
    """Every marked block of ``text`` (markers included), by name, in order."""
    return {m.group(1): m.group(0) for m in _BLOCK.finditer(text)}


def old_block(name: str, path: Path = RESULTS) -> str:
    """The body of block ``name`` in ``path`` (without its markers), '' when absent."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    begin, end = markers(name)
    found = blocks(text).get(name)
    return found[len(begin):-len(end)].strip() if found else ""


def write_block(name: str, body: str, path: Path = RESULTS) -> Path:
    """Put ``body`` between ``name``'s markers in ``path`` (replacing the old
    block, or appended at the end)."""
    begin, end = markers(name)
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    if name in blocks(current):
        current = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _m: block, current, flags=re.S)
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")
    return path
