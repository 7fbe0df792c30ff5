"""Counters and gauges of the server, written in the Prometheus text format."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Thread-safe counters (``inc``) plus gauges read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self.counters.get((name, tuple(sorted(labels.items()))), 0)

    def render(self, gauges: dict[str, float]) -> str:
        """Prometheus exposition text: every counter, then the gauges."""
        lines: list[str] = []
        with self._lock:
            items = sorted(self.counters.items())
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                lines.append(f"# TYPE {name} counter")
                seen.add(name)
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        for name, value in gauges.items():
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value:g}")
        return "\n".join(lines) + "\n"
