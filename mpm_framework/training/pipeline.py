"""From the global record stream to this process's micro-batches, step by step.

The stream is cut into *chunks* of ``batch_size`` consecutive records; an
optimizer step consumes ``processes x grad_accum`` chunks, chunk ``a * W + r`` of
the step going to process ``r`` as its micro-batch ``a``. A skipped record
makes its micro-batch smaller (never pulls a record from elsewhere), so every
process knows without talking to the others which records are its own, and the
same global batch -- hence the same loss -- results for any number of
processes. A micro-batch whose records were all skipped is replaced by a copy
of a valid one with weight zero, so every process still runs the same number
of forward/backward passes (collectives stay in step).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError, MPMError
from .quality import Ledger
from .samples import BadSample
from .sources import RecordSource
from .stages import PrepareContext, Stage
from .stream import Record, RecordStream


@dataclass
class MicroBatch:
    batch: dict[str, Any]
    units: int  # loss units (label tokens / images); 0 for a stand-in batch
    samples: int
    tokens: int
    langs: dict[str, int] = field(default_factory=dict)


@dataclass
class StepData:
    step: int  # 0-based optimizer step this data feeds
    micro: list[MicroBatch]
    ledger: Ledger  # records read and skipped by this process in this step
    state: dict[str, Any]  # stream position after this step
    epoch: int


class StepProducer:
    def __init__(
        self,
        stage: Stage,
        ctx: PrepareContext,
        sources: list[RecordSource],
        weights: list[float],
        *,
        seed: int,
        batch_size: int,
        grad_accum: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        state: dict[str, Any] | None = None,
        shuffle: bool = True,
        buffer: int = 10_000,
        max_examples: int = 5,
        worker: tuple[int, int] = (0, 1),  # (id, count) of data-loader workers sharing the steps
    ) -> None:
        self.stage, self.ctx = stage, ctx
        self.sources, self.weights = sources, weights
        self.seed, self.b, self.A = seed, batch_size, grad_accum
        self.rank, self.W = rank, world_size
        self.start_step, self.state = start_step, state
        self.shuffle, self.buffer, self.max_examples = shuffle, buffer, max_examples
        self.worker = worker
        self._filler: list[Any] | None = None

    @property
    def records_per_step(self) -> int:
        return self.b * self.A * self.W

    def _stream(self, state: dict[str, Any] | None) -> RecordStream:
        return RecordStream(self.sources, self.weights, self.seed, self.shuffle, self.buffer, state)

    def _item(self, record: Record, ledger: Ledger | None) -> Any | None:
        """The prepared item of one record, or None (counted) when it is skipped."""
        source = self.sources[record.source]
        where = f"{source.name} record {record.index}"
        try:
            try:
                raw, where = record.fetch()
            except Exception as exc:  # an unreadable row of a table
                reason = "bad_encoding" if isinstance(exc, UnicodeError) else "malformed"
                raise BadSample(reason, f"{where}: {type(exc).__name__}: {exc}") from None
            sample = source.sample(raw, where)
            if sample.kind not in self.stage.sample_kinds:
                raise DataError(
                    f"stage '{self.stage.name}' trains on {'/'.join(self.stage.sample_kinds)} records, "
                    f"but {where} is a '{sample.kind}' record (data source {source.name})"
                )
            sample.index = record.index
            rng = random.Random(f"mpm-sample/{self.seed}/{record.index}")
            return self.stage.prepare(sample, rng, self.ctx)
        except BadSample as bad:
            if ledger is not None:
                ledger.add_bad(bad.reason, str(bad))
            return None
        except MPMError:
            raise  # a mistake in the config or the stack, not in this record: stop with its message
        except Exception as exc:  # one record's failure (a tokenizer error...) costs that record only
            if ledger is not None:
                ledger.add_bad("prepare_error", f"prepare_error: {where}: {type(exc).__name__}: {exc}")
            return None

    def _collate(self, items: list[Any], units: int | None = None) -> MicroBatch:
        batch = self.stage.collate(items, self.ctx)
        langs = Counter(getattr(item, "lang", "?") for item in items)
        return MicroBatch(batch, self.stage.loss_units(batch) if units is None else units,
                          len(items), self.stage.tokens(batch), dict(langs))

    def filler(self) -> list[Any]:
        """A valid micro-batch's items to stand in for an all-skipped one."""
        if self._filler is None:
            stream = self._stream(None)
            for _ in range(100_000):
                try:
                    record = next(stream)
                except StopIteration:
                    break
                item = self._item(record, None)
                if item is not None:
                    self._filler = [item]
                    break
            if self._filler is None:
                raise DataError("no usable training record found: every record read was skipped")
        return self._filler

    def __iter__(self) -> Iterator[StepData]:
        stream = self._stream(self.state)
        step = self.start_step
        worker_id, workers = self.worker
        per_step = self.records_per_step
        while True:
            mine = (step - self.start_step) % workers == worker_id
            ledger = Ledger(max_examples=self.max_examples)
            buckets: list[list[Any]] = [[] for _ in range(self.A)]
            first = stream.index  # chunks count from the step's first record (robust to a resume
            try:                  # with another batch size or process count)
                for _ in range(per_step):
                    record = next(stream)
                    chunk = (record.index - first) // self.b
                    owner, accum = chunk % self.W, chunk // self.W
                    if owner != self.rank or not mine:
                        continue
                    ledger.add_seen()
                    item = self._item(record, ledger)
                    if item is not None:
                        buckets[accum].append(item)
            except StopIteration:
                return  # a one-shot iterable ran out mid-step: the data is exhausted
            if mine:
                yield self._step(step, buckets, ledger, stream)
            step += 1

    def _step(self, step: int, buckets: list[list[Any]], ledger: Ledger, stream: RecordStream) -> StepData:
        valid = [items for items in buckets if items]
        micro = []
        for items in buckets:
            if items:
                micro.append(self._collate(items))
            else:  # all skipped: same forward/backward count on every process, zero weight
                micro.append(self._collate(valid[0] if valid else self.filler(), units=0))
                micro[-1].samples = micro[-1].tokens = 0
                micro[-1].langs = {}
        return StepData(step, micro, ledger, stream.state(), max(stream.epochs))
