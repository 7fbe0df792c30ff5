"""Fuzz: 100 generated malformed requests of every kind a client can get wrong ->
each a 4xx with an OpenAI error body and no traceback; the server stays up and
its memory does not grow (RSS growth < 50 MB)."""

from __future__ import annotations

import base64
import io
import json
import random

import httpx
import pytest
from PIL import Image

pytestmark = pytest.mark.slow
psutil = pytest.importorskip("psutil")


def _bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")  # ~100 kB declaring 900 Mpx
    return buffer.getvalue()


def _kinds(support):
    png = support.png_bytes(7)
    bomb = _bomb()

    def message(url: str, text: str = "?"):
        return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                             {"type": "text", "text": text}]}]

    def body(rng: random.Random, **change):
        out = {"model": "mpm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        out.update(change)
        return json.dumps(out).encode()

    return [
        lambda r: bytes(r.getrandbits(8) for _ in range(r.randint(1, 64))),  # invalid JSON
        lambda r: b'{"model": "mpm", "messages": [',  # truncated JSON
        lambda r: b"",  # empty body
        lambda r: json.dumps(r.choice([[], 3, "text", None, True])).encode(),  # not an object
        lambda r: body(r, messages=[]),
        lambda r: body(r, messages=r.choice([None, "hi", 5, [5], [{"role": "user"}], [{"content": "x"}]])),
        lambda r: body(r, messages=[{"role": r.choice(["robot", "", 1, None]), "content": "x"}]),
        lambda r: body(r, messages=[{"role": "assistant", "content": "only an answer"}]),
        lambda r: body(r, messages=[{"role": "user", "content": ""}]),
        lambda r: body(r, messages=[{"role": "user", "content": [{"type": r.choice(["audio", "video", 7])}]}]),
        lambda r: body(r, max_tokens=r.choice([0, -5, "10", 2.5, [], 10_000])),
        lambda r: body(r, temperature=r.choice([-1, 3.5, "hot", []])),
        lambda r: body(r, top_p=r.choice([0, 1.5, -0.1, "x"])),
        lambda r: body(r, stop=r.choice([5, ["a"] * 6, [1, 2]])),
        lambda r: body(r, n=r.randint(2, 9)),
        lambda r: body(r, stream=r.choice(["yes", 1, {}])),
        lambda r: body(r, **{r.choice(["logprobs", "tools", "foo", "bar_baz", "functions"]): True}),
        lambda r: body(r, model=r.choice(["", "gpt-4", 42])),
        lambda r: body(r, messages=message(support.data_url(png[: r.randint(10, len(png) - 10)]))),  # truncated
        lambda r: body(r, messages=message(support.data_url(bytes(r.getrandbits(8) for _ in range(200))))),
        lambda r: body(r, messages=message("data:image/png;base64," + "%%%notbase64%%%")),
        lambda r: body(r, messages=message("data:text/plain;base64," + base64.b64encode(b"hi").decode())),
        lambda r: body(r, messages=message(support.data_url(bomb))),  # decompression bomb
        lambda r: body(r, messages=message(support.data_url(png + b"\0" * (20 * 2**20)))),  # > --max-image-bytes
        lambda r: body(r, messages=message(r.choice(["http://example.org/a.png", "https://x/y.jpg",
                                                     "ftp://x/y.png"]))),
        lambda r: body(r, messages=message(r.choice(["/etc/passwd", "file:///etc/shadow", "../../x.png"]))),
        lambda r: body(r, messages=message(support.data_url(png), text="<image> sneaky")),
        lambda r: body(r, messages=[*message(support.data_url(png)),
                                    {"role": "assistant", "content": "ok"},
                                    *message(support.data_url(support.png_bytes(8)))]),  # two images
        lambda r: body(r, messages=[{"role": "user", "content": "word " * r.randint(300, 600)}]),  # over-long
    ]


def test_fuzzed_requests_are_4xx_and_the_server_survives(server, support):
    rng = random.Random(19)
    kinds = _kinds(support)
    headers = {"Authorization": f"Bearer {support.API_KEY}", "Content-Type": "application/json"}
    url = f"{server.base}/v1/chat/completions"
    process = psutil.Process(server.proc.pid)
    with httpx.Client(timeout=60) as http:
        for kind in kinds:  # warm-up: one of each, so allocator pools are filled before measuring
            http.post(url, content=kind(rng), headers=headers)
        rss_before = process.memory_info().rss
        statuses = []
        for i in range(100):
            payload = kinds[i % len(kinds)](rng)
            response = http.post(url, content=payload, headers=headers)
            statuses.append(response.status_code)
            assert 400 <= response.status_code < 500, (i, payload[:200], response.text[:300])
            error = response.json()["error"]
            assert error["message"] and error["type"] and "Traceback" not in response.text
        rss_after = process.memory_info().rss
        assert http.get(f"{server.base}/health").status_code == 200
        ok = http.post(url, headers=headers, json={"model": "mpm", "max_tokens": 2,
                                                   "messages": [{"role": "user", "content": "still there?"}]})
        assert ok.status_code == 200
    growth_mb = (rss_after - rss_before) / 2**20
    print(f"fuzz: {len(statuses)} requests, statuses {sorted(set(statuses))}, RSS growth {growth_mb:.1f} MB")
    assert growth_mb < 50
