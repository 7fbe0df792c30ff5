"""A real ``mpm serve`` subprocess on 127.0.0.1 (a free port) with a tiny stack:
a random tiny Llama + tiny CLIP chat stack and a tiny UNet paint stack, composed
by ``mpm compose ... serve`` exactly as a user would, plus the official
``openai`` client pointed at it."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("mpm_llm_llama")
pytest.importorskip("mpm_vision_clip")

API_KEY = "test-key-123"
WINDOW = 256
LLM_OVERRIDES = ["model.llm.tiny.hidden_size=32", "model.llm.tiny.intermediate_size=64",
                 f"model.llm.tiny.max_position_embeddings={WINDOW}"]
DECODER_OVERRIDES = ["model.decoder.num_inference_steps=3", "model.decoder.image_size=16"]
CHAT_STACK = ["compose", "--llm", "llama", "--vision", "clip", *LLM_OVERRIDES]
FULL_STACK = ["compose", "--llm", "llama", "--vision", "clip", "--decoder", "unet", *LLM_OVERRIDES,
              *DECODER_OVERRIDES]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``mpm ARGS serve ...`` in a subprocess; ``stop`` sends SIGTERM."""

    def __init__(self, args: list[str], log_path: Path, startup_s: float = 180.0) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        self._log = open(log_path, "w")
        command = [sys.executable, "-m", "mpm_framework.cli.main", *args, "--host", "127.0.0.1",
                   "--port", str(self.port), "--threads", "1", "--log-level", "warning"]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_healthy(startup_s)

    def _wait_healthy(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpm serve exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mpm serve did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server: chat + paint, an API key, a small batch and queue (so
    that 429 is reachable)."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    proc = ServerProcess([*FULL_STACK, "serve", "--api-key", API_KEY, "--max-batch", "2", "--max-queue", "1"],
                         log)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server):
    import openai

    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=60)


def png_bytes(seed: int = 0, size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="session")
def support():
    """The helpers above for test modules (importlib mode: conftest is not importable)."""
    import types

    return types.SimpleNamespace(png_bytes=png_bytes, data_url=data_url, metric=metric, free_port=free_port,
                                 ServerProcess=ServerProcess, API_KEY=API_KEY, WINDOW=WINDOW,
                                 CHAT_STACK=CHAT_STACK, FULL_STACK=FULL_STACK, LLM_OVERRIDES=LLM_OVERRIDES)
