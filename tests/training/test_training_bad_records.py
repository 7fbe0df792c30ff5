"""One bad record costs one record: a caption the tokenizer rejects (a lone
surrogate) and lines that are not UTF-8, in every file reader."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf

from mpm_framework.testing import tiny_chat_stack
from mpm_framework.training import train_stage
from mpm_framework.training.config import DataSource
from mpm_framework.training.metrics import read_metrics
from mpm_framework.training.samples import BadSample
from mpm_framework.training.sources import open_source

BAD = b"\xff\xfe caf\xe9"  # Latin-1 text: not UTF-8


def _src(path, **kw):
    return OmegaConf.merge(OmegaConf.structured(DataSource), {"path": str(path), **kw})


def _read(source):
    """(reason or text, where) of every record, in file order."""
    out = []
    for raw, where in source.iterate(0, 0, False, 100):
        try:
            out.append((source.sample(raw, where).text, where))
        except BadSample as bad:
            out.append((bad.reason, where))
    return out


def _write_jsonl(path, records, bad_line):
    lines = [json.dumps(r).encode() for r in records]
    lines[bad_line] = b'{"image": "img1.png", "text": "' + BAD + b'"}'
    path.write_bytes(b"\n".join(lines) + b"\n")


def _write_json_array(path, records, bad_index):
    items = [json.dumps(r).encode() for r in records]
    items[bad_index] = b'{"image": "img1.png",\n "text": "' + BAD + b'"}'
    path.write_bytes(b"[\n" + b",\n".join(items) + b"\n]\n")


def _write_csv(path, records, bad_index, delimiter):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["image", "text"])
        for r in records:
            writer.writerow([r["image"], r["text"]])
    lines = path.read_bytes().split(b"\r\n")
    lines[1 + bad_index] = b"img1.png" + delimiter.encode() + BAD
    path.write_bytes(b"\r\n".join(lines))


@pytest.mark.parametrize(("name", "streaming"), [
    ("d.jsonl", False), ("d.jsonl", True), ("d.json", False), ("d.csv", False), ("d.csv", True),
    ("d.tsv", False), ("d.tsv", True),
])
def test_a_line_that_is_not_utf8_is_counted_in_every_reader(tmp_path, helpers, name, streaming):
    records = helpers.pair_records(4)
    path = tmp_path / name
    if name.endswith(".jsonl"):
        _write_jsonl(path, records, bad_line=2)
    elif name.endswith(".json"):
        _write_json_array(path, records, bad_index=2)
    else:
        _write_csv(path, records, bad_index=2, delimiter="\t" if name.endswith(".tsv") else ",")
    rows = _read(open_source(_src(path), streaming))
    texts = [r["text"] for r in records]
    line = {"d.jsonl": 3, "d.json": 4, "d.csv": 4, "d.tsv": 4}[name]  # the bad record's first line
    assert rows[2] == ("bad_encoding", f"{name}:{line}")
    assert [t for t, _ in rows[:2] + rows[3:]] == texts[:2] + texts[3:]  # the others intact
    assert not any("\ufffd" in t for t, _ in rows)  # nothing silently replaced


def test_json_array_records_are_named_by_line(tmp_path):
    path = tmp_path / "llava.json"
    path.write_text('[\n  {"image": "a.png", "text": "x"},\n\n  {"image": "b.png", "text": "y"}\n]')
    assert [w for _, w in open_source(_src(path), False).iterate(0, 0, False, 10)] == ["llava.json:2",
                                                                                       "llava.json:4"]


def test_surrogate_caption_and_bad_bytes_cost_one_record_each(tmp_path, helpers, make_cfg):
    helpers.write_images(tmp_path, 24)
    records = helpers.pair_records(24)
    lines = [json.dumps(r).encode() for r in records]
    lines[5] = b'{"image": "img5.png", "text": "a red \\ud800 square"}'  # JSON for a lone surrogate
    lines[9] = b'{"image": "img9.png", "text": "' + BAD + b'"}'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    cfg = make_cfg(path, max_steps=6, batch_size=4, save_every=0)  # one epoch
    result = train_stage(tiny_chat_stack(), cfg, progress=False)
    assert result.steps == 6 and result.data["seen"] == 24
    assert result.data["by_reason"] == {"prepare_error": 1, "bad_encoding": 1}
    summary = json.loads((tmp_path / "run" / "align" / "final" / "summary.json").read_text())
    assert summary["data"]["by_reason"] == result.data["by_reason"]
    end = read_metrics(tmp_path / "run" / "align" / "metrics.jsonl")[-1]
    assert end["event"] == "end" and end["data"]["skipped"] == 2


def test_prepare_error_examples_name_the_file_and_line(tmp_path, helpers, make_cfg):
    from mpm_framework.errors import DataError

    helpers.write_images(tmp_path, 8)
    lines = [b'{"image": "img%d.png", "text": "caption \\udc00 %d"}' % (i, i) for i in range(6)]
    lines += [json.dumps(r).encode() for r in helpers.pair_records(8)[6:]]
    path = tmp_path / "all_bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    cfg = make_cfg(path, max_steps=2, batch_size=4, save_every=0, data={"shuffle": False, "bad_check_after": 4})
    with pytest.raises(DataError) as info:  # the max bad share still stops the run, with examples
        train_stage(tiny_chat_stack(), cfg, progress=False)
    message = str(info.value)
    assert "prepare_error: 4" in message and "prepare_error: all_bad.jsonl:1: UnicodeEncodeError" in message
    assert "\\udc00" in message  # the surrogate shown escaped: the message itself prints


def test_a_webdataset_stream_with_bad_text_stops_with_a_clear_error(tmp_path):
    """datasets decodes key.txt inside its own generator and cannot go on after it
    fails: the best a stream can do is a DataError naming the source, not a traceback."""
    import io
    import tarfile

    from PIL import Image

    from mpm_framework.errors import DataError

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    shards = tmp_path / "shards"
    shards.mkdir()
    with tarfile.open(shards / "shard-0000.tar", "w") as tar:
        for k in range(8):  # past the first examples datasets reads to infer the features
            for ext, payload in (("jpg", buf.getvalue()), ("txt", BAD if k == 6 else f"caption {k}".encode())):
                info = tarfile.TarInfo(f"k{k}.{ext}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    source = open_source(_src(shards), streaming=True)
    with pytest.raises(DataError, match=r"not valid UTF-8.*re-encode"):
        _read(source)


def test_a_tokenizer_type_error_is_one_skipped_record(monkeypatch, make_cfg, capsys):
    """What the issue saw with llama: the `tokenizers` library raises TypeError on a lone surrogate."""
    tokenizers = pytest.importorskip("tokenizers")
    from mpm_framework.testing import TinyLLM, TinyLLMConfig

    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel()
    byte_ids = TinyLLM._bytes

    def through_tokenizers(text):
        tokenizer.encode(text)  # TypeError: TextInputSequence must be str
        return byte_ids(text)

    monkeypatch.setattr(TinyLLM, "_bytes", staticmethod(through_tokenizers))
    texts = [{"text": f"the red circle number {i}."} for i in range(16)]
    texts[3] = {"text": "a lone \ud800 surrogate"}
    cfg = make_cfg(stage="pretrain", max_steps=4, batch_size=4, save_every=0, data={"shuffle": False})
    result = train_stage(TinyLLM(TinyLLMConfig()), cfg, train_samples=texts, progress=False)
    assert result.steps == 4 and result.data["by_reason"] == {"prepare_error": 1}
    assert "e.g. prepare_error: train_samples[3]: TypeError" in capsys.readouterr().out
