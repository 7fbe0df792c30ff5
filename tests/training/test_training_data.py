"""Data sources, record normalisation and the global record stream."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from omegaconf import OmegaConf
from PIL import Image

from mpm_framework.errors import DataError
from mpm_framework.training.config import DataSource
from mpm_framework.training.samples import BadSample, normalise, open_image
from mpm_framework.training.sources import (
    IterSource,
    ListSource,
    Malformed,
    detect_format,
    open_source,
)
from mpm_framework.training.stream import RecordStream


def _src(path, **kw):
    return OmegaConf.merge(OmegaConf.structured(DataSource), {"path": str(path), **kw})


def _records(source, epoch=0, shuffle=False):
    return [source.sample(raw, where) for raw, where in source.iterate(epoch, 0, shuffle, 100)]


# -- normalisation ----------------------------------------------------------------------


def test_pairs_record_becomes_a_sample():
    s = normalise({"image": "a.png", "caption": "  a cat  "}, kind="pairs", lang="en", where="f:1")
    assert (s.kind, s.text, s.image, s.lang) == ("pairs", "a cat", "a.png", "en")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"image": "a.png", "text": "  "}, "empty_text"),
        ({"text": "a cat"}, "missing_image"),
        (Malformed("not valid JSON"), "malformed"),
        ([1, 2], "malformed"),
    ],
)
def test_bad_pairs_are_named(raw, reason):
    with pytest.raises(BadSample) as info:
        normalise(raw, kind="pairs", lang="en", where="f:7")
    assert info.value.reason == reason and "f:7" in str(info.value)


def test_llava_conversation_is_parsed_and_marker_added():
    raw = {"id": "1", "image": "x.jpg", "lang": "zh",
           "conversations": [{"from": "human", "value": "这是什么?"}, {"from": "gpt", "value": "一只猫。"},
                             {"from": "human", "value": "什么颜色?"}, {"from": "gpt", "value": "白色。"}]}
    s = normalise(raw, kind="instruct", lang="en", where="f:1")
    assert s.lang == "zh" and [t.role for t in s.turns] == ["user", "assistant", "user", "assistant"]
    assert s.turns[0].content == "<image>\n这是什么?"  # LLaVA puts the marker in the first human turn


@pytest.mark.parametrize(
    ("conversations", "image", "reason"),
    [
        ([{"from": "human", "value": "<image>\nhi"}, {"from": "gpt", "value": "x"}], None, "missing_image"),
        ([{"from": "human", "value": "hi"}], "x.jpg", "bad_conversation"),
        ([{"from": "human", "value": "hi"}, {"from": "gpt", "value": ""}], None, "empty_text"),
        ([{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "x"}], None, "bad_conversation"),
        ("not a list", None, "bad_conversation"),
        ([{"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "x"}], "a", "bad_conversation"),
    ],
)
def test_bad_conversations(conversations, image, reason):
    with pytest.raises(BadSample) as info:
        normalise({"conversations": conversations, "image": image}, kind="instruct", lang="en", where="w")
    assert info.value.reason == reason


def test_images_open_from_paths_bytes_and_dicts(tmp_path, helpers):
    helpers.write_images(tmp_path, 2, corrupt={1})
    ok = normalise({"image": "img0.png", "text": "x"}, kind="pairs", lang="en", where="w",
                   image_root=str(tmp_path))
    assert open_image(ok).size == (36, 36)
    png = (tmp_path / "img0.png").read_bytes()
    for image in (png, {"bytes": png, "path": None}, Image.new("RGB", (5, 5))):
        assert open_image(normalise({"image": image, "text": "x"}, kind="pairs", lang="en", where="w")).mode == "RGB"
    for name, reason in (("img1.png", "corrupt_image"), ("nope.png", "missing_image")):
        s = normalise({"image": name, "text": "x"}, kind="pairs", lang="en", where="w", image_root=str(tmp_path))
        with pytest.raises(BadSample) as info:
            open_image(s)
        assert info.value.reason == reason


# -- formats ------------------------------------------------------------------------------


def test_jsonl_keeps_line_numbers_and_tolerates_bad_lines(tmp_path, helpers):
    path = helpers.write_jsonl(tmp_path / "d.jsonl", helpers.pair_records(4), raw_lines={2: "{oops"})
    source = open_source(_src(path), streaming=False)
    assert len(source) == 4
    raw, where = source.get(2)
    assert isinstance(raw, Malformed) and where == "d.jsonl:3"
    assert source.sample(*source.get(0)).image_root == str(tmp_path)
    streamed = open_source(_src(path), streaming=True)
    rows = list(streamed.iterate(0, 0, False, 10))
    assert [w for _, w in rows] == ["d.jsonl:1", "d.jsonl:2", "d.jsonl:3", "d.jsonl:4"]


def test_json_array_llava_file(tmp_path):
    data = [{"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nq"},
                                                 {"from": "gpt", "value": "a"}]}]
    (tmp_path / "llava.json").write_text(json.dumps(data))
    assert detect_format(str(tmp_path / "llava.json")) == "json"
    source = open_source(_src(tmp_path / "llava.json", kind="instruct"), streaming=False)
    assert _records(source)[0].turns[1].content == "a"


def test_csv_and_parquet_through_datasets(tmp_path, helpers):
    import pandas as pd

    frame = pd.DataFrame(helpers.pair_records(5))
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        for streaming in (False, True):
            samples = _records(open_source(_src(tmp_path / name), streaming))
            assert [s.text for s in samples] == [r["text"] for r in helpers.pair_records(5)]
            assert samples[0].image_root == str(tmp_path)


def test_image_folder_with_metadata(tmp_path, helpers):
    folder = tmp_path / "folder"
    helpers.write_images(folder, 3, corrupt={2})
    with open(folder / "metadata.jsonl", "w") as f:
        for i in range(3):
            f.write(json.dumps({"file_name": f"img{i}.png", "text": f"caption {i}"}) + "\n")
    source = open_source(_src(folder), streaming=False)
    samples = _records(source)
    assert [s.text for s in samples] == ["caption 0", "caption 1", "caption 2"]
    assert open_image(samples[0]).size == (36, 36)
    with pytest.raises(BadSample, match="corrupt_image"):
        open_image(samples[2])  # decoded per sample, so one bad file costs one record


def test_webdataset_shards_stream_with_keys(tmp_path):
    def png(color):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), color).save(buf, "PNG")
        return buf.getvalue()

    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        with tarfile.open(shards / f"shard-{s:04d}.tar", "w") as tar:
            for k in range(3):
                key = f"s{s}k{k}"
                for ext, payload in (("jpg", png("red")), ("txt", f"caption {key}".encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    source = open_source(_src(shards), streaming=False)  # webdataset always streams
    assert not source.sized
    samples = _records(source)
    assert sorted(s.text for s in samples) == sorted(f"caption s{s}k{k}" for s in range(2) for k in range(3))
    assert samples[0].where.startswith("shard-") and open_image(samples[0]).size == (8, 8)


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no minute of retries on this machine
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="hub"):
        open_source(_src("nobody/no-such-dataset-mpm", format="hub"), streaming=False)


def test_unknown_format_and_missing_file(tmp_path):
    from mpm_framework.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'jsonl'"):
        open_source(_src(tmp_path / "x.jsonl", format="jsonll"), streaming=False)
    with pytest.raises(DataError, match="not found"):
        open_source(_src(tmp_path / "missing.jsonl", format="jsonl"), streaming=False)


# -- the global stream ----------------------------------------------------------------------


def _take(stream, n):
    return [stream.__next__().fetch()[1] for _ in range(n)]


def test_stream_is_a_function_of_seed_and_position():
    a, b = ListSource(list(range(10)), "a"), ListSource(list(range(100, 104)), "b")
    first = RecordStream([a, b], [0.7, 0.3], seed=3)
    head = _take(first, 9)
    state = first.state()
    tail = _take(first, 25)  # crosses epochs of both sources
    again = RecordStream([a, b], [0.7, 0.3], seed=3)
    assert _take(again, 34) == head + tail
    resumed = RecordStream([a, b], [0.7, 0.3], seed=3, state=json.loads(json.dumps(state)))
    assert _take(resumed, 25) == tail
    assert _take(RecordStream([a, b], [0.7, 0.3], seed=4), 34) != head + tail


def test_every_record_once_per_epoch():
    source = ListSource(list(range(7)), "a")
    stream = RecordStream([source], [1.0], seed=0)
    rows = [stream.__next__().fetch()[0] for _ in range(14)]
    assert sorted(rows[:7]) == list(range(7)) and sorted(rows[7:]) == list(range(7))
    assert rows[:7] != rows[7:]  # reshuffled per epoch


def test_streaming_source_resumes_by_position(tmp_path, helpers):
    path = helpers.write_jsonl(tmp_path / "d.jsonl", helpers.pair_records(10))
    make = lambda state=None: RecordStream([open_source(_src(path), True)], [1.0], seed=1, buffer=4,  # noqa: E731
                                           state=state)
    full = make()
    names = _take(full, 23)
    part = make()
    _take(part, 13)
    assert _take(make(part.state()), 10) == names[13:]


def test_one_shot_iterable_ends_the_stream():
    stream = RecordStream([IterSource(iter([{"text": "a"}, {"text": "b"}]))], [1.0], seed=0)
    assert len(list(stream)) == 2
