"""Bad data: skipped records are counted per reason, a few are named, and past
``data.max_bad_fraction`` the run stops with an error that says what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from .samples import REASONS


def printable(text: str) -> str:
    """``text`` with what cannot be written as UTF-8 (lone surrogates from bad
    data) escaped, so reports, logs and checkpoints never fail on it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class Ledger:
    seen: int = 0  # records read (this process, or all processes after merging)
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    examples: list[str] = field(default_factory=list)  # "reason: where: detail"
    max_examples: int = 5

    @property
    def skipped(self) -> int:
        return sum(self.bad.values())

    @property
    def fraction(self) -> float:
        return self.skipped / self.seen if self.seen else 0.0

    def add_seen(self, n: int = 1) -> None:
        self.seen += n

    def add_bad(self, reason: str, detail: str) -> None:
        self.bad[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(printable(detail))

    def merge(self, other: Ledger) -> None:
        self.seen += other.seen
        for k, v in other.bad.items():
            self.bad[k] = self.bad.get(k, 0) + v
        room = self.max_examples - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])

    def counts_vector(self) -> list[int]:
        return [self.seen, *(self.bad[r] for r in REASONS)]

    @classmethod
    def from_vector(cls, vector: list[int], examples: list[str], max_examples: int) -> Ledger:
        ledger = cls(max_examples=max_examples)
        ledger.seen = int(vector[0])
        ledger.bad = {r: int(v) for r, v in zip(REASONS, vector[1:], strict=True)}
        ledger.examples = list(examples[:max_examples])
        return ledger

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen, "bad": dict(self.bad), "examples": list(self.examples)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, max_examples: int) -> Ledger:
        ledger = cls(max_examples=max_examples)
        if state:
            ledger.seen = int(state["seen"])
            ledger.bad.update({k: int(v) for k, v in state["bad"].items()})
            ledger.examples = list(state.get("examples", []))[:max_examples]
        return ledger

    def summary(self) -> dict[str, Any]:
        return {"seen": self.seen, "skipped": self.skipped, "fraction": round(self.fraction, 6),
                "by_reason": {k: v for k, v in self.bad.items() if v}}

    def report(self) -> str:
        """One paragraph for the end of a run."""
        if not self.skipped:
            return f"data: {self.seen} records read, none skipped"
        reasons = ", ".join(f"{k} {v}" for k, v in self.bad.items() if v)
        lines = [f"data: {self.seen} records read, {self.skipped} skipped "
                 f"({100 * self.fraction:.1f}%): {reasons}"]
        lines += [f"  e.g. {e}" for e in self.examples]
        return "\n".join(lines)

    def check(self, max_fraction: float, min_seen: int, final: bool = False) -> None:
        """Raise :class:`DataError` once the skipped share is past the limit."""
        if not self.seen or (self.seen < min_seen and not final):
            return
        if self.fraction > max_fraction:
            reasons = ", ".join(f"{k}: {v}" for k, v in self.bad.items() if v)
            examples = "\n".join(f"  - {e}" for e in self.examples)
            raise DataError(
                f"too much bad data: {self.skipped} of {self.seen} records "
                f"({100 * self.fraction:.0f}%) were skipped, more than data.max_bad_fraction="
                f"{max_fraction:g}. Reasons: {reasons}. Examples:\n{examples}\n"
                "Fix the data (paths in image fields resolve against data.train[].image_root, "
                "default the data file's folder) or raise data.max_bad_fraction."
            )
