"""Safety hooks around painting (torch-free).

A *prompt filter* sees each prompt before anything is computed and returns a
reason to refuse it (or None); an *image filter* sees each generated image and
returns a reason to withhold it. VisCPM-Paint runs a prompt and an image safety
checker this way; plug a real classifier in by passing any callable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ConfigError

PromptFilter = Callable[[str], "str | None"]
ImageFilter = Callable[[object], "str | None"]  # PIL.Image -> reason or None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class BlocklistFilter:
    """Refuses prompts containing any listed word or phrase (case- and width-
    insensitive substring match, so it works for unsegmented scripts too)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted({_fold(w.strip()) for w in words if w.strip()})

    @classmethod
    def from_file(cls, path: str | Path) -> BlocklistFilter:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"blocklist not found: {p}")
        lines = p.read_text(encoding="utf-8").splitlines()
        return cls(line for line in lines if not line.lstrip().startswith("#"))

    def __call__(self, prompt: str) -> str | None:
        folded = _fold(prompt)
        hit = next((w for w in self.words if w in folded), None)
        return f"blocked term {hit!r}" if hit else None


def first_rejection(filters: Iterable[Callable[[object], str | None]], item: object) -> str | None:
    for check in filters:
        reason = check(item)
        if reason:
            return str(reason)
    return None
