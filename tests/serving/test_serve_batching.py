"""Continuous batching in process: requests that join a running batch at step
boundaries get the same greedy answers as ``stack.chat`` one at a time; a
cancelled request leaves the batch; the encoding cache is bounded by bytes."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from mpm_framework.serving.images import EncodingCache, ImageLimits, content_hash
from mpm_framework.serving.schemas import parse_chat_request

pytest.importorskip("mpm_llm_llama")


@pytest.fixture(scope="module")
def service():
    from mpm_framework.composition import compose
    from mpm_framework.serving.service import ServeOptions, Service

    torch.set_num_threads(1)
    stack = compose(llm="llama", vision="clip", overrides=["model.llm.tiny.hidden_size=32",
                                                           "model.llm.tiny.intermediate_size=64"])
    with torch.no_grad():  # clear-cut greedy choices: a random init is nearly uniform
        stack.llm.hf.get_output_embeddings().weight.mul_(25.0)
    service = Service(stack, None, ServeOptions(max_batch=8, max_queue=8))
    service.scheduler.start()
    yield service
    service.scheduler.stop()


class Recorder:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.done = threading.Event()
        self.result = None

    def __call__(self, kind: str, value) -> None:
        if kind == "piece":
            self.pieces.append(value)
        else:
            self.result = value
            self.done.set()


def _prepare(service, messages, max_tokens: int) -> tuple[Recorder, object]:
    from mpm_framework.serving.scheduler import ChatJob

    prepared = service.prepare_chat(parse_chat_request({"model": "mpm", "messages": messages, "temperature": 0,
                                                        "max_tokens": max_tokens}))
    recorder = Recorder()
    job = ChatJob(prepared.encoding, prepared.config, recorder, prepared.image_key, prepared.pixels)
    return recorder, job


def _submit(service, messages, max_tokens: int) -> tuple[Recorder, object]:
    recorder, job = _prepare(service, messages, max_tokens)
    service.scheduler.submit(job)
    return recorder, job


def _image_messages(support, seed: int, text: str):
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": support.data_url(support.png_bytes(seed))}},
                                         {"type": "text", "text": text}]}]


@pytest.mark.parametrize("merge", [True, False], ids=["merged-states", "re-prefill"])
def test_joining_requests_answer_as_one_at_a_time(service, support, merge, monkeypatch):
    """Both joining paths: the LLaMA plugin's decode-state merge, and the
    re-prefill fallback for LLMs that cannot merge."""
    import io

    from PIL import Image

    stack, metrics = service.chat_stack, service.metrics
    asks = [(0, "What is in the image?", 24), (None, "Wie geht es dir?", 12), (1, "左边有什么?", 16),
            (None, "Bonjour", 20)]
    expected = []
    for seed, text, limit in asks:
        image = None if seed is None else Image.open(io.BytesIO(support.png_bytes(seed)))
        expected.append(stack.chat(image, text, max_new_tokens=limit)[0])
    steps_before = metrics.value("mpm_decode_steps_total")
    rows_before = metrics.value("mpm_decode_rows_total")
    prefills_before = metrics.value("mpm_prefills_total")
    merges_before = metrics.value("mpm_state_merges_total")
    monkeypatch.setattr(service.scheduler, "_merge_ok", None if merge else False)  # the loop is idle now

    def messages(seed, text):
        return _image_messages(support, seed, text) if seed is not None else [{"role": "user", "content": text}]

    waiting = [_prepare(service, messages(seed, text), limit) for seed, text, limit in asks[1:]]
    first, _ = _submit(service, messages(*asks[0][:2]), asks[0][2])
    deadline = time.monotonic() + 30
    while len(first.pieces) < 2 and not first.done.is_set() and time.monotonic() < deadline:
        time.sleep(0.0005)
    for _, job in waiting:  # they join the running batch at the next step boundary
        service.scheduler.submit(job)
    assert not first.done.is_set(), "the first request finished before the others could join"
    others = [recorder for recorder, _ in waiting]
    for recorder in [first, *others]:
        assert recorder.done.wait(60)
    answers = [r.result.text for r in [first, *others]]
    assert answers == expected
    assert ["".join(r.pieces) for r in [first, *others]] == expected  # streamed pieces add up
    steps = metrics.value("mpm_decode_steps_total") - steps_before
    rows = metrics.value("mpm_decode_rows_total") - rows_before
    assert rows > steps  # some steps decoded several requests together
    assert metrics.value("mpm_prefills_total") - prefills_before >= 2  # requests joined a running batch
    merges = metrics.value("mpm_state_merges_total") - merges_before
    assert merges >= 1 if merge else merges == 0
    if merge:
        assert service.scheduler._merge_ok is True


def test_cancelled_request_leaves_the_batch(service):
    recorder, job = _submit(service, [{"role": "user", "content": "Erzähl mir eine lange Geschichte"}], 200)
    deadline = time.monotonic() + 30
    while not recorder.pieces and not recorder.done.is_set() and time.monotonic() < deadline:
        time.sleep(0.001)
    job.cancel()
    assert recorder.done.wait(30)
    if recorder.result.finish_reason != "cancelled":  # finished (end token) before the cancel landed
        pytest.skip("the tiny model ended its answer before the cancel arrived")
    assert recorder.result.completion_tokens < 200
    deadline = time.monotonic() + 10
    while service.scheduler.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.scheduler.running == 0


def test_encoding_cache_is_bounded_by_bytes():
    cache = EncodingCache(max_bytes=3 * 4 * 100)  # three (1, 10, 10) float32 tensors
    for i in range(5):
        cache.put(f"k{i}", torch.zeros(1, 10, 10))
    assert len(cache) == 3 and cache.bytes == 1200
    assert cache.get("k0") is None and cache.get("k4") is not None
    cache.get("k2")  # recently used: survives the next insert
    cache.put("k5", torch.zeros(1, 10, 10))
    assert cache.get("k2") is not None and cache.get("k3") is None
    cache.put("huge", torch.zeros(1000))
    assert cache.get("huge") is None and cache.bytes <= cache.max_bytes


def test_image_limits(tmp_path, support):
    from mpm_framework.serving.errors import APIError
    from mpm_framework.serving.images import open_image, read_image_url

    png = support.png_bytes(0)
    limits = ImageLimits(max_bytes=len(png) + 10, max_pixels=40 * 40)
    assert read_image_url(support.data_url(png), limits) == png
    with pytest.raises(APIError, match="more than the limit"):
        read_image_url(support.data_url(png + b"x" * 100), limits)
    with pytest.raises(APIError, match="pixels"):
        open_image(support.png_bytes(0, size=41), limits)
    # a decompression bomb: a tiny file declaring 20000 x 20000 pixels
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(APIError, match="pixels"):
        open_image(buffer.getvalue(), ImageLimits())
    # paths: only under --allow-dir, never outside it (symlinks resolved)
    inside = tmp_path / "ok" / "a.png"
    inside.parent.mkdir()
    inside.write_bytes(png)
    (tmp_path / "ok" / "link.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "secret.png").write_bytes(png)
    allowed = ImageLimits(allow_dirs=(inside.parent.resolve(),))
    assert read_image_url(str(inside), allowed) == png
    assert read_image_url(f"file://{inside}", allowed) == png
    for url in (str(tmp_path / "secret.png"), str(tmp_path / "ok" / "link.png"), str(inside.parent / ".." / "secret.png")):
        with pytest.raises(APIError, match="outside"):
            read_image_url(url, allowed)
    with pytest.raises(APIError, match="--allow-dir"):
        read_image_url(str(inside), ImageLimits())
    assert content_hash(png) == content_hash(bytes(png)) != content_hash(png[:-1])
