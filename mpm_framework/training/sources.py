"""Record sources: where raw training records come from.

A source either supports random access (``sized``: in-memory lists, JSON
lines read into memory, ``datasets.Dataset`` tables) or is read front to back
(streaming: lazily read JSON lines, ``datasets.IterableDataset`` for parquet /
CSV / webdataset shards / hub ids, any Python iterable). Sources never decode
images and never reject records: a line that does not parse comes out as
:class:`~.samples.Malformed` so the trainer can count it.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, did_you_mean
from .samples import Malformed, Sample, normalise

FORMATS = ("auto", "jsonl", "json", "csv", "parquet", "imagefolder", "webdataset", "hub")
_EXT = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
        ".tar": "webdataset"}


class RecordSource:
    """Base class. ``get``/``__len__`` for sized sources, ``iterate`` for all."""

    sized: bool = True
    reiterable: bool = True

    def __init__(self, name: str, *, kind: str | None = None, lang: str = "en",
                 image_root: str | None = None, text_field: str | None = None,
                 image_field: str | None = None) -> None:
        self.name, self.kind, self.lang, self.image_root = name, kind, lang, image_root
        self.text_field, self.image_field = text_field, image_field

    def __len__(self) -> int:
        raise TypeError(f"{self.name} is a streaming source")

    def get(self, i: int) -> tuple[Any, str]:
        raise TypeError(f"{self.name} is a streaming source")

    def iterate(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[tuple[Any, str]]:
        order: Iterable[int] = range(len(self))
        if shuffle:
            order = permutation(len(self), seed, epoch)
        for i in order:
            yield self.get(int(i))

    def sample(self, raw: Any, where: str) -> Sample:
        return normalise(raw, kind=self.kind, lang=self.lang, where=where, image_root=self.image_root,
                         text_field=self.text_field, image_field=self.image_field)


def permutation(n: int, seed: int, epoch: int, salt: int = 0) -> Any:
    """The record order of one epoch: a function of (seed, salt, epoch) only."""
    import numpy as np

    return np.random.default_rng([seed, salt, epoch]).permutation(n)


def buffered_shuffle(items: Iterator[Any], buffer: int, rng: random.Random) -> Iterator[Any]:
    """Approximate shuffle of a stream through a buffer (as webdataset does)."""
    pool: list[Any] = []
    for item in items:
        if len(pool) < buffer:
            pool.append(item)
            continue
        j = rng.randrange(len(pool))
        pool[j], item = item, pool[j]
        yield item
    rng.shuffle(pool)
    yield from pool


class ListSource(RecordSource):
    """Records held in memory (``train_samples=[...]`` of the Python API)."""

    def __init__(self, records: Sequence[Any], name: str = "train_samples", **kw: Any) -> None:
        super().__init__(name, **kw)
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, i: int) -> tuple[Any, str]:
        return self.records[i], f"{self.name}[{i}]"


class IterSource(RecordSource):
    """Any iterable; a one-shot iterator (a generator) gives a single epoch."""

    sized = False

    def __init__(self, iterable: Iterable[Any], name: str = "train_samples", **kw: Any) -> None:
        super().__init__(name, **kw)
        self.iterable = iterable
        self.reiterable = iter(iterable) is not iterable
        self._used = False

    def iterate(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[tuple[Any, str]]:
        if not self.reiterable:
            if self._used:
                return iter(())
            self._used = True
        items = ((r, f"{self.name}#{i}") for i, r in enumerate(self.iterable))
        if shuffle and self.reiterable:
            return buffered_shuffle(items, buffer, random.Random(f"mpm-stream/{seed}/{epoch}"))
        return items


def _parse_line(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(f"not valid JSON ({exc.msg} at column {exc.colno})")


class JsonLinesSource(RecordSource):
    """JSON lines. Blank lines are ignored; a line that does not parse is a
    malformed record and a line that is not UTF-8 a ``bad_encoding`` one (both
    counted), never a fatal error."""

    def __init__(self, path: Path, streaming: bool, **kw: Any) -> None:
        super().__init__(str(path), **kw)
        self.path = path
        self.sized = not streaming
        if self.sized:
            self.lines = [(n, line) for n, line in _read_lines(path) if not isinstance(line, str) or line.strip()]

    def __len__(self) -> int:
        return len(self.lines)

    def get(self, i: int) -> tuple[Any, str]:
        n, line = self.lines[i]
        where = f"{self.path.name}:{n}"
        return _parse_line(line, where) if isinstance(line, str) else line, where

    def iterate(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[tuple[Any, str]]:
        if self.sized:
            yield from super().iterate(epoch, seed, shuffle, buffer)
            return
        items = ((_parse_line(line, f"{self.path.name}:{n}") if isinstance(line, str) else line,
                  f"{self.path.name}:{n}")
                 for n, line in _read_lines(self.path) if not isinstance(line, str) or line.strip())
        if shuffle:
            items = buffered_shuffle(items, buffer, random.Random(f"mpm-stream/{seed}/{epoch}"))
        yield from items


def _not_utf8(exc: UnicodeDecodeError, line: bytes) -> Malformed:
    return Malformed(f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line); "
                     "re-encode the file as UTF-8", reason="bad_encoding")


def _read_lines(path: Path) -> Iterator[tuple[int, str | Malformed]]:
    """(line number, text) of every line, decoded one by one: a line that is not
    UTF-8 comes out as a ``bad_encoding`` placeholder instead of being silently
    altered (a replacement character) or failing the whole file."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                raw = raw[3:]
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, _not_utf8(exc, raw)


# Bytes that are not UTF-8, decoded with errors="surrogateescape", become U+DC80..U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_SPACE = re.compile(r"[ \t\n\r]*")


def _undecodable(text: str, start: int = 0, end: int | None = None, lines: bool = True) -> Malformed | None:
    """A ``bad_encoding`` placeholder when ``text[start:end]`` holds bytes that were not UTF-8."""
    hit = _UNDECODABLE.search(text, start, len(text) if end is None else end)
    if hit is None:
        return None
    where = f" on line {text.count(chr(10), 0, hit.start()) + 1}" if lines else ""
    return Malformed(f"not valid UTF-8 (byte 0x{ord(hit.group()) - 0xDC00:02x}{where}); "
                     "re-encode the file as UTF-8", reason="bad_encoding")


def read_json_array(file: Path) -> list[tuple[int, Any]]:
    """(line, record) of each element of a JSON array file, read element by
    element so a record with bytes that are not UTF-8 is one ``bad_encoding``
    record, not a failure of the whole file."""
    text = file.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    decoder = json.JSONDecoder()

    def broken(why: str, pos: int) -> DataError:
        line = text.count("\n", 0, pos) + 1
        return DataError(f"{file} is not a JSON array ({why} at line {line}); use one JSON object per line "
                         "(.jsonl) to let single bad lines be skipped")

    pos = _SPACE.match(text).end()
    if not text.startswith("[", pos):
        raise DataError(f"{file} must hold a JSON array of records")
    pos = _SPACE.match(text, pos + 1).end()
    records: list[tuple[int, Any]] = []
    line, counted = 1, 0
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise broken(exc.msg, exc.pos) from None
            line += text.count("\n", counted, pos)
            counted = pos
            records.append((line, _undecodable(text, pos, end) or value))
            pos = _SPACE.match(text, end).end()
            if text.startswith(",", pos):
                pos = _SPACE.match(text, pos + 1).end()
            elif text.startswith("]", pos):
                pos += 1
                break
            else:
                raise broken("expected ',' or ']'", pos)
    if _SPACE.match(text, pos).end() != len(text):
        raise broken("extra data after the array", pos)
    return records


class JsonArraySource(RecordSource):
    """A JSON array file (LLaVA's ``llava_instruct_150k.json``), records named by line."""

    def __init__(self, path: Path, **kw: Any) -> None:
        super().__init__(path.name, **kw)
        self.path = path
        self.records = read_json_array(path)

    def __len__(self) -> int:
        return len(self.records)

    def get(self, i: int) -> tuple[Any, str]:
        line, record = self.records[i]
        return record, f"{self.path.name}:{line}"


class CsvSource(RecordSource):
    """CSV / TSV files, read with Python's csv module row by row: a row that is
    not UTF-8 is one ``bad_encoding`` record (named by file and line), empty
    cells are missing values, every value stays text."""

    def __init__(self, files: list[str], streaming: bool, limit: int | None = None, **kw: Any) -> None:
        super().__init__(Path(files[0]).name if len(files) == 1 else files[0], **kw)
        self.files, self.limit = [Path(f) for f in files], limit
        self.sized = not streaming
        if self.sized:
            self.rows = list(self._rows())

    def _rows(self) -> Iterator[tuple[Any, str]]:
        count = 0
        for file in self.files:
            delimiter = "\t" if file.suffix == ".tsv" else ","
            with open(file, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter)
                header = next(reader, None)
                if header is None:
                    continue
                start = reader.line_num + 1
                for cells in reader:
                    where = f"{file.name}:{start}"
                    start = reader.line_num + 1
                    if not any(c.strip() for c in cells):
                        continue
                    if self.limit is not None and count >= self.limit:
                        return
                    count += 1
                    bad = _undecodable("\x00".join(cells), lines=False)
                    if bad is not None:
                        yield bad, where
                    elif len(cells) != len(header):
                        yield Malformed(f"{len(cells)} fields, the header has {len(header)}"), where
                    else:
                        yield {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)}, where

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, i: int) -> tuple[Any, str]:
        return self.rows[i]

    def iterate(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[tuple[Any, str]]:
        if self.sized:
            yield from super().iterate(epoch, seed, shuffle, buffer)
            return
        items = self._rows()
        if shuffle:
            items = buffered_shuffle(items, buffer, random.Random(f"mpm-stream/{seed}/{epoch}"))
        yield from items


class HFSource(RecordSource):
    """A ``datasets.Dataset`` (random access, memory-mapped Arrow)."""

    def __init__(self, dataset: Any, name: str, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def get(self, i: int) -> tuple[Any, str]:
        return self.dataset[i], f"{self.name} row {i + 1}"


class HFStreamSource(RecordSource):
    """A ``datasets.IterableDataset``, shuffled by datasets itself (shard order +
    buffer, reseeded per epoch)."""

    sized = False

    def __init__(self, dataset: Any, name: str, limit: int | None = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.dataset, self.limit = dataset, limit

    def iterate(self, epoch: int, seed: int, shuffle: bool, buffer: int) -> Iterator[tuple[Any, str]]:
        ds = self.dataset
        if shuffle:
            ds = ds.shuffle(seed=seed, buffer_size=buffer)
        ds.set_epoch(epoch)
        rows = iter(ds)
        if self.limit is not None:
            rows = itertools.islice(rows, self.limit)
        for i, row in enumerate(_guarded(rows, self.name)):
            key = row.get("__key__") if isinstance(row, dict) else None
            url = row.get("__url__") if isinstance(row, dict) else None
            where = f"{Path(url).name}:{key}" if key and url else f"{self.name} #{i + 1}"
            yield row, where


def _guarded(rows: Iterator[Any], name: str) -> Iterator[Any]:
    """A datasets stream that fails on a record (text that is not UTF-8 in a
    webdataset shard) cannot go on past it: say so clearly instead of a traceback."""
    n = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: the record after #{n} is not valid UTF-8 ({exc.reason} at byte "
                            f"{exc.start}); a datasets stream cannot skip it, so re-encode the text as UTF-8 "
                            "(JSON lines and CSV sources count such records and go on)") from None
        n += 1
        yield row


# -- opening a configured source ---------------------------------------------------


def detect_format(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        return "webdataset" if any(p.glob("*.tar")) else "imagefolder"
    matches = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
    if not matches:
        raise DataError(f"no data files match {path!r}")
    first = Path(matches[0])
    if first.suffix == ".json" and first.is_file():
        with open(first, encoding="utf-8", errors="replace") as f:
            head = f.read(4096).lstrip()
        return "json" if head.startswith("[") else "jsonl"
    if first.suffix in _EXT:
        return _EXT[first.suffix]
    if not first.exists() and path.count("/") == 1 and not path.startswith((".", "/")):
        return "hub"
    raise DataError(f"cannot tell the format of {path!r}; set format: to one of "
                    f"{', '.join(f for f in FORMATS if f != 'auto')}")


def _files(path: str, suffixes: tuple[str, ...]) -> list[str]:
    p = Path(path)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.suffix in suffixes)
    elif any(c in path for c in "*?["):
        files = sorted(glob.glob(path))
    else:
        files = [path]
    if not files or not all(Path(f).exists() for f in files):
        raise DataError(f"data file not found: {path}")
    return files


def _image_columns_undecoded(ds: Any) -> Any:
    """Keep images as {bytes, path}: decoding happens per sample, where a corrupt
    image is counted instead of stopping the whole iteration."""
    from datasets import Image as HFImage

    features = getattr(ds, "features", None) or {}
    for name, feature in features.items():
        if isinstance(feature, HFImage) and feature.decode:
            ds = ds.cast_column(name, HFImage(decode=False))
    return ds


def open_source(src: Any, streaming: bool) -> RecordSource:
    """A :class:`RecordSource` for one ``data.train`` / ``data.eval`` entry."""
    fmt = src.format
    if fmt not in FORMATS:
        raise ConfigError(f"unknown data format {fmt!r}.{did_you_mean(fmt, FORMATS)} "
                          f"Formats: {', '.join(FORMATS)}")
    from .samples import KINDS

    if src.kind not in KINDS:
        raise ConfigError(f"unknown data kind {src.kind!r}.{did_you_mean(src.kind, KINDS)} "
                          f"Kinds: {', '.join(KINDS)}")
    path = str(src.path)
    if fmt == "auto":
        fmt = detect_format(path)
    kw: dict[str, Any] = dict(kind=src.kind, lang=src.lang, text_field=src.text_field,
                              image_field=src.image_field)
    root = src.image_root
    if fmt in ("jsonl", "json"):
        file = Path(_files(path, (".jsonl", ".json"))[0])
        kw["image_root"] = root or str(file.parent)
        if fmt == "jsonl":
            source: RecordSource = JsonLinesSource(file, streaming, **kw)
        else:
            source = JsonArraySource(file, **kw)
        if src.max_samples is not None and source.sized:
            source = _Head(source, src.max_samples)
        return source
    if fmt == "csv":  # our own reader: a row that is not UTF-8 is counted, not fatal
        files = _files(path, (".csv", ".tsv"))
        kw["image_root"] = root or str(Path(files[0]).parent)
        return CsvSource(files, streaming, limit=src.max_samples, **kw)
    import datasets

    datasets.disable_progress_bars()
    streaming = streaming or fmt == "webdataset"
    try:
        if fmt == "parquet":
            files = _files(path, (".parquet",))
            kw["image_root"] = root or str(Path(files[0]).parent)
            ds = datasets.load_dataset(fmt, data_files=files, split="train", streaming=streaming)
        elif fmt == "imagefolder":
            kw["image_root"] = root or path
            ds = datasets.load_dataset("imagefolder", data_dir=path, split="train", streaming=streaming)
        elif fmt == "webdataset":
            files = _files(path, (".tar",))
            ds = datasets.load_dataset("webdataset", data_files={"train": files}, split="train", streaming=True)
        else:
            ds = datasets.load_dataset(path, split=src.split, streaming=streaming)
    except (FileNotFoundError, DataError):
        raise
    except Exception as exc:
        hint = " (no network here? hub datasets need one, or a local copy)" if fmt == "hub" else ""
        raise DataError(f"cannot load {fmt} data {path!r}: {type(exc).__name__}: {exc}{hint}") from None
    ds = _image_columns_undecoded(ds)
    if streaming:
        return HFStreamSource(ds, path, limit=src.max_samples, **kw)
    source = HFSource(ds, Path(path).name, **kw)
    return _Head(source, src.max_samples) if src.max_samples is not None else source


class _Head(RecordSource):
    """The first ``n`` records of a sized source."""

    def __init__(self, inner: RecordSource, n: int) -> None:
        super().__init__(inner.name, kind=inner.kind, lang=inner.lang, image_root=inner.image_root,
                         text_field=inner.text_field, image_field=inner.image_field)
        self.inner, self.n = inner, min(n, len(inner))

    def __len__(self) -> int:
        return self.n

    def get(self, i: int) -> tuple[Any, str]:
        return self.inner.get(i)


def in_memory_source(samples: Iterable[Any], name: str = "train_samples") -> RecordSource:
    """``train_samples`` of the Python API: a sequence (random access, many
    epochs) or any iterable (streamed)."""
    if isinstance(samples, Sequence) and not isinstance(samples, str | bytes):
        return ListSource(samples, name=name, kind=None)
    return IterSource(samples, name=name, kind=None)
