"""``mpm serve --checkpoint RUN_DIR`` on a run folder written by ``mpm compose ...
train``: the answers equal ``mpm compose chat --checkpoint``; SIGTERM lets the
request in flight finish within --grace and the process exits cleanly."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytestmark = pytest.mark.slow

RECIPE = """model:
  llm: {name: llama, tiny: {hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}
  vision: clip
data:
  max_length: 128
  train: [{path: pairs.jsonl, kind: pairs}]
run: {stage: align, output_dir: run, max_steps: 2, batch_size: 2, device: cpu, progress: false, save_every: 100}
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A real run folder: two training steps of the align stage on four images."""
    from mpm_framework.cli.main import cli

    root = tmp_path_factory.mktemp("train")
    with open(root / "pairs.jsonl", "w") as f:
        for i in range(4):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                root / f"img{i}.png")
            f.write(json.dumps({"image": f"img{i}.png", "text": f"a red square number {i}", "lang": "en"}) + "\n")
    (root / "recipe.yaml").write_text(RECIPE)
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(cli, ["compose", "--config", "recipe.yaml", "train"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert (root / "run" / "align" / "final" / "model.safetensors").is_file()
    return root / "run"


def test_serve_a_run_folder_and_stop_gracefully(run_folder, tmp_path, support):
    from mpm_framework.cli.main import cli

    image = tmp_path / "q.png"
    image.write_bytes(support.png_bytes(5))
    expected = CliRunner().invoke(cli, ["compose", "chat", "--checkpoint", str(run_folder), "--image", str(image),
                                        "What is this?", "--max-new-tokens", "10", "--no-stream"])
    assert expected.exit_code == 0, expected.output

    server = support.ServerProcess(["serve", "--checkpoint", str(run_folder), "--grace", "30"],
                                   tmp_path / "server.log")
    try:
        models = httpx.get(f"{server.base}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["run"]  # the run folder's name
        body = {"model": "run", "temperature": 0, "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": support.data_url(image.read_bytes())}},
            {"type": "text", "text": "What is this?"}]}]}
        reply = httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=60).json()
        assert reply["choices"][0]["message"]["content"] + "\n" == expected.output

        # SIGTERM while a long answer streams: it still ends with [DONE], then the process exits 0
        lines: list[str] = []
        first_chunk = threading.Event()

        def stream() -> None:
            long = {"model": "run", "max_tokens": 200, "temperature": 0, "stream": True,
                    "messages": [{"role": "user", "content": "Tell me a long story"}]}
            with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=long, timeout=60) as response:
                for line in response.iter_lines():
                    if line:
                        lines.append(line)
                        first_chunk.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert first_chunk.wait(30)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        reader.join(60)
        assert lines[-1] == "data: [DONE]"
        finish = [json.loads(x[6:])["choices"][0]["finish_reason"] for x in lines[1:-1]]
        assert finish[-1] in ("stop", "length")
        assert server.proc.wait(30) == 0, server.log()
        assert time.monotonic() - started < 30
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base}/health", timeout=2)
    finally:
        server.stop()
