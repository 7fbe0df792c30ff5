"""The global record stream: one deterministic sequence of records for the whole
run, whatever the number of processes.

Record ``i`` of the stream is a function of the seed and ``i`` alone (the source
it comes from is drawn by a seeded generator, its position inside the source
follows a per-epoch permutation or the source's own seeded stream order). The
stream's position is a small JSON-able state saved in every checkpoint, so a
resumed run reads exactly the records an uninterrupted one would have read.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import DataError
from .sources import RecordSource, permutation


@dataclass
class Record:
    index: int  # position in the global stream
    source: int  # which source
    epoch: int  # the source's epoch
    fetch: Callable[[], tuple[Any, str]]  # (raw record, where) -- lazy for random-access sources


class RecordStream:
    def __init__(
        self,
        sources: list[RecordSource],
        weights: list[float],
        seed: int,
        shuffle: bool = True,
        buffer: int = 10_000,
        state: dict[str, Any] | None = None,
    ) -> None:
        if not sources:
            raise DataError("no training data: set data.train (or pass train_samples)")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise DataError(f"data source weights must be >= 0 with a positive sum, got {weights}")
        self.sources, self.weights = sources, weights
        self.seed, self.shuffle, self.buffer = seed & 0xFFFFFFFF, shuffle, buffer
        self.index = 0
        self.epochs = [0] * len(sources)
        self.positions = [0] * len(sources)
        self._pick = random.Random(f"mpm-mix/{self.seed}")
        self._orders: dict[int, tuple[int, Any]] = {}
        self._iters: dict[int, Iterator[tuple[Any, str]]] = {}
        if state:
            self.index = int(state["index"])
            self.epochs = [int(e) for e in state["epochs"]]
            self.positions = [int(p) for p in state["positions"]]
            if state.get("pick") is not None:
                version, internal, gauss = state["pick"]
                self._pick.setstate((version, tuple(internal), gauss))
            if len(self.epochs) != len(sources):
                raise DataError(
                    f"the checkpoint was written with {len(self.epochs)} data sources but the config "
                    f"now has {len(sources)}; resume with the data config of the original run"
                )

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._pick.getstate()
        return {"index": self.index, "epochs": list(self.epochs), "positions": list(self.positions),
                "pick": [version, list(internal), gauss] if len(self.sources) > 1 else None}

    def _choose(self) -> int:
        if len(self.sources) == 1:
            return 0
        return self._pick.choices(range(len(self.sources)), weights=self.weights)[0]

    def _sized_fetch(self, j: int) -> Callable[[], tuple[Any, str]] | None:
        source = self.sources[j]
        n = len(source)
        if n == 0:
            raise DataError(f"data source {source.name} holds no records")
        if self.positions[j] >= n:
            self.epochs[j] += 1
            self.positions[j] = 0
        epoch, pos = self.epochs[j], self.positions[j]
        if self.shuffle:
            cached = self._orders.get(j)
            if cached is None or cached[0] != epoch:
                cached = (epoch, permutation(n, self.seed, epoch, salt=j))
                self._orders[j] = cached
            row = int(cached[1][pos])
        else:
            row = pos
        self.positions[j] += 1
        return lambda: source.get(row)

    def _stream_next(self, j: int) -> tuple[Any, str] | None:
        source = self.sources[j]
        for attempt in range(2):
            it = self._iters.get(j)
            if it is None:
                it = source.iterate(self.epochs[j], self.seed + 7919 * j, self.shuffle, self.buffer)
                it = itertools.islice(it, self.positions[j], None)  # resume: skip what was read
                self._iters[j] = it
            item = next(it, None)
            if item is not None:
                self.positions[j] += 1
                return item
            del self._iters[j]
            if self.positions[j] == 0:
                raise DataError(f"data source {source.name} holds no records")
            if not source.reiterable or attempt:
                return None
            self.epochs[j] += 1
            self.positions[j] = 0
        return None

    def __iter__(self) -> RecordStream:
        return self

    def __next__(self) -> Record:
        j = self._choose()
        source = self.sources[j]
        if source.sized:
            fetch = self._sized_fetch(j)
        else:
            item = self._stream_next(j)
            if item is None:
                raise StopIteration  # a one-shot iterable ran out: the data is exhausted
            fetch = _constant(item)
        record = Record(self.index, j, self.epochs[j], fetch)
        self.index += 1
        return record


def _constant(item: tuple[Any, str]) -> Callable[[], tuple[Any, str]]:
    def fetch() -> tuple[Any, str]:
        return item

    return fetch
