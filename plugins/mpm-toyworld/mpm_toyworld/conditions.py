"""The demo's conditions: which pivot, which alignment data, which instruct data.

Kept apart from the experiment so that the run-folder check
(``integrity.py``) and the command line read them without importing the
experiment (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass

PIVOTS = ("mpm", "no-pivot")


@dataclass(frozen=True)
class Condition:
    name: str
    pivot: str
    align: str  # "en" | "native"
    instruct: str  # "calibrated" | "english" | "native"
    description: str


CONDITIONS: dict[str, Condition] = {
    "mpm": Condition("mpm", "mpm", "en", "calibrated",
                     "MPM: English-only align, English instruct + calibration share"),
    "mpm-cal0": Condition("mpm-cal0", "mpm", "en", "english",
                          "MPM without calibration: English-only align and instruct"),
    "no-pivot": Condition("no-pivot", "no-pivot", "en", "calibrated",
                          "pivot pretrained without parallel text; otherwise as mpm"),
    "native": Condition("native", "mpm", "native", "native",
                        "upper bound: align and instruct on data in every language"),
}
