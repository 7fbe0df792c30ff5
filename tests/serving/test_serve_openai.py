"""``mpm serve`` through the official ``openai`` client: chat with an image
(plain and streamed), a second turn on the cached image, usage, images, and the
errors a client can cause (400 with OpenAI bodies, 401, 429 + Retry-After)."""

from __future__ import annotations

import base64
import concurrent.futures
import io

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

openai = pytest.importorskip("openai")


def _image_message(support, text: str, seed: int = 0):
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": support.data_url(support.png_bytes(seed))}},
                                        {"type": "text", "text": text}]}


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["mpm"]
    assert httpx.get(f"{server.base}/health").json()["status"] == "ok"


def test_chat_plain_and_streamed_with_an_image(client, support):
    messages = [_image_message(support, "Was ist auf dem Bild?")]
    reply = client.chat.completions.create(model="mpm", messages=messages, max_tokens=12, temperature=0)
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert 0 < usage.completion_tokens <= 12 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    stream = client.chat.completions.create(model="mpm", messages=messages, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    pieces, finish, streamed_usage = [], None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            streamed_usage = chunk.usage
    assert "".join(pieces) == text and finish == reply.choices[0].finish_reason
    assert streamed_usage.prompt_tokens == usage.prompt_tokens
    assert streamed_usage.completion_tokens == usage.completion_tokens


def test_raw_stream_ends_with_done(server, support):
    body = {"model": "mpm", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {support.API_KEY}"}, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"


def test_greedy_answers_equal_compose_chat_and_the_history_path(client, support, tmp_path):
    """Two turns about one image: the server equals ``mpm compose ... chat`` (first
    turn) and the Python History path (both turns), token for token."""
    from mpm_framework.cli.main import cli
    from mpm_framework.composition import compose
    from mpm_framework.contracts.prompt import Turn

    path = tmp_path / "img.png"
    path.write_bytes(support.png_bytes(3))
    result = CliRunner().invoke(cli, [*support.CHAT_STACK, "chat", "--image", str(path), "Was siehst du?",
                                      "--max-new-tokens", "10", "--no-stream"])
    assert result.exit_code == 0, result.output
    stack = compose(llm="llama", vision="clip", overrides=support.LLM_OVERRIDES)
    first, history = stack.chat(str(path), "Was siehst du?", max_new_tokens=10)
    second, _ = stack.chat(None, "Und links?", history=history, max_new_tokens=10)
    assert result.output == first + "\n"

    messages = [_image_message(support, "Was siehst du?", seed=3)]
    one = client.chat.completions.create(model="mpm", messages=messages, max_tokens=10, temperature=0)
    assert one.choices[0].message.content == first
    metrics = f"{client.base_url}".replace("/v1/", "/metrics")
    before = support.metric(httpx.get(metrics).text, "mpm_image_encodings_total")
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "Und links?"}]
    two = client.chat.completions.create(model="mpm", messages=messages, max_tokens=10, temperature=0)
    assert two.choices[0].message.content == second
    after = support.metric(httpx.get(metrics).text, "mpm_image_encodings_total")
    assert after == before  # the second turn reused the cached encoding
    turns = [*history.turns, Turn("user", "Und links?")]
    assert two.usage.prompt_tokens == len(stack.encode_conversation(turns, add_generation_prompt=True))


def test_seeded_sampling_is_reproducible(client):
    kwargs = dict(model="mpm", messages=[{"role": "user", "content": "Hallo"}], max_tokens=8, temperature=0.9,
                  top_p=0.9, seed=7)
    a = client.chat.completions.create(**kwargs).choices[0].message.content
    b = client.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b


def test_images_generate_on_the_unet_stack(client):
    result = client.images.generate(prompt="ein roter Kreis links", n=2, size="16x16", response_format="b64_json")
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in result.data]
    assert len(images) == 2 and all(im.size == (16, 16) for im in images)
    with pytest.raises(openai.BadRequestError, match="16x16"):
        client.images.generate(prompt="x", size="1024x1024")


@pytest.mark.parametrize(("change", "needle"), [
    ({"messages": []}, "messages"),
    ({"n": 2}, "n=1"),
    ({"logprobs": True}, "logprobs"),
    ({"bogus": 1}, "bogus"),
    ({"max_tokens": "5"}, "max_tokens"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}]}]},
     "remote image URLs"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/etc/passwd"}}]}]},
     "--allow-dir"),
    ({"model": "gpt-4o"}, "does not exist"),
])
def test_bad_requests_get_openai_errors(client, change, needle):
    body = {"model": "mpm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **change}
    extra = {k: body.pop(k) for k in ("bogus",) if k in body}  # fields the client itself does not know
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as info:
        client.chat.completions.create(**body, extra_body=extra or None)
    error = info.value.body
    assert needle in error["message"] and error["type"] == "invalid_request_error"
    assert "Traceback" not in str(error)


def test_corrupt_image_and_too_long_prompt(client, support):
    png = support.png_bytes(1)
    for data, needle in ((png[: len(png) // 2], "corrupt or truncated"), (b"hello world", "not an image")):
        message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": support.data_url(data)}},
                                               {"type": "text", "text": "?"}]}
        with pytest.raises(openai.BadRequestError, match=needle):
            client.chat.completions.create(model="mpm", messages=[message], max_tokens=2)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mpm", messages=[{"role": "user", "content": "word " * 300}],
                                       max_tokens=2)
    message = info.value.body["message"]
    assert f"context window is {support.WINDOW} tokens" in message and "the prompt is " in message
    assert info.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="max_tokens=1000 plus the prompt"):
        client.chat.completions.create(model="mpm", messages=[{"role": "user", "content": "hi"}], max_tokens=1000)


def test_wrong_or_missing_api_key_is_401(server):
    bad = openai.OpenAI(base_url=f"{server.base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    response = httpx.post(f"{server.base}/v1/chat/completions", json={})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{server.base}/health").status_code == 200  # health needs no key


def test_full_queue_is_429_with_retry_after(client):
    """max_batch 2 + max_queue 1: of six long requests sent at once, some are refused with Retry-After."""
    def ask(i: int):
        try:
            reply = client.chat.completions.create(model="mpm", messages=[{"role": "user", "content": f"Frage {i}"}],
                                                   max_tokens=120, temperature=0)
            return reply.usage.completion_tokens
        except openai.RateLimitError as exc:
            return exc

    # Six requests against room for three: unless the first three finish before
    # the last arrive (a stalled client thread on a loaded machine), some are
    # refused. A burst with no refusal is retried; a broken limit never refuses.
    for _burst in range(4):
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(ask, range(6)))
        refused = [r for r in results if isinstance(r, Exception)]
        if refused:
            break
    # How many of the burst get in (1 to 3) depends on how fast the decode loop
    # drains the one queue slot into the batch; some always must, and afterwards
    # the server takes requests again.
    assert refused and len(results) - len(refused) >= 1
    assert isinstance(ask(6), int)
    assert all(int(r.response.headers["retry-after"]) >= 1 for r in refused)
    assert refused[0].body["type"] == "rate_limit_error"


def test_client_disconnect_cancels_the_request(server, support):
    """A streaming client that goes away frees its batch row (the request is cancelled)."""
    import time

    headers = {"Authorization": f"Bearer {support.API_KEY}"}
    before = support.metric(httpx.get(f"{server.base}/metrics").text, "mpm_requests_cancelled_total")
    body = {"model": "mpm", "max_tokens": 200, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Erzähl eine lange Geschichte"}]}
    with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body, headers=headers,
                      timeout=60) as response:
        for line in response.iter_lines():
            if line:
                break  # the first chunk arrived; leave
    deadline = time.monotonic() + 20
    cancelled = before
    while time.monotonic() < deadline and cancelled == before:
        time.sleep(0.1)
        cancelled = support.metric(httpx.get(f"{server.base}/metrics").text, "mpm_requests_cancelled_total")
    assert cancelled == before + 1
    assert support.metric(httpx.get(f"{server.base}/metrics").text, "mpm_batch_rows") == 0


def test_stop_strings_cut_the_answer_streamed_or_not(client):
    messages = [{"role": "user", "content": "Beschreibe das Bild bitte ausführlich."}]
    full = client.chat.completions.create(model="mpm", messages=messages, max_tokens=16, temperature=0)
    text = full.choices[0].message.content
    if len(text.strip()) < 4:
        pytest.skip("the tiny model's answer is too short to cut")
    stop = text.strip()[2:4]
    expected = text[: text.find(stop)].strip()
    cut = client.chat.completions.create(model="mpm", messages=messages, max_tokens=16, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == expected and cut.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model="mpm", messages=messages, max_tokens=16, temperature=0,
                                            stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected


def test_serve_command_options():
    from mpm_framework.cli.main import cli

    for args in (["serve", "--help"], ["compose", "serve", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        for option in ("--checkpoint", "--host", "--api-key", "--allow-dir", "--max-image-bytes", "--grace",
                       "--trust-remote-code", "--ui"):
            assert option in result.output
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0 and "--checkpoint RUN_DIR" in result.output
