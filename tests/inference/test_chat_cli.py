"""``mpm compose ... chat``: one answer, interactive mode, errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli
from mpm_framework.composition import compose

TINY = ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision"]


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(2):
        rng = np.random.default_rng(i)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _goodbye() -> str:
    from mpm_framework.lang_en.pack import EnglishPack

    return EnglishPack().phrases.get("chat_goodbye", "Goodbye.")


def _invoke(args, input=None):
    return CliRunner().invoke(cli, args, input=input, catch_exceptions=False)


def test_one_answer_equals_the_python_api(tiny_components, images):
    stack = compose(llm="tiny-llm", vision="tiny-vision")  # seeded: the same weights as the command's
    answer, _ = stack.chat(images[0], "这张图片里有什么？", max_new_tokens=10)
    for stream_flag in ("--stream", "--no-stream"):
        result = _invoke([*TINY, "chat", "--image", images[0], "这张图片里有什么？", "--max-new-tokens", "10",
                          stream_flag])
        assert result.exit_code == 0, result.output
        assert result.output == answer + "\n"
    beam, _ = stack.chat(images[0], "What is this?", max_new_tokens=6, num_beams=2, repetition_penalty=1.1)
    result = _invoke([*TINY, "chat", "--image", images[0], "What is this?", "--max-new-tokens", "6",
                      "--beams", "2", "--repetition-penalty", "1.1"])
    assert result.output == beam + "\n"


def test_interactive_session(tiny_components, images):
    stack = compose(llm="tiny-llm", vision="tiny-vision")
    first, history = stack.chat(images[0], "What is this?", max_new_tokens=5)
    second, _ = stack.chat(images[0], "Why?", history=history, max_new_tokens=5)
    other, _ = stack.chat(images[1], "And this?", max_new_tokens=5)
    after_reset, _ = stack.chat(images[1], "Hi", max_new_tokens=5)
    script = "\n".join(["What is this?", "Why?", "/image nowhere.png", f"/image {images[1]}", "And this?",
                        "/reset", "Hi", "/help", "/quit", "never read"]) + "\n"
    result = CliRunner().invoke(cli, [*TINY, "chat", "--image", images[0], "--max-new-tokens", "5"], input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (first, second, other, after_reset):
        assert text in out
    assert out.index(first) < out.index(second) < out.index(other) < out.index(after_reset)
    assert "image not found: nowhere.png" in out and "(conversation reset)" in out and "/reset" in out
    assert out.rstrip().endswith(_goodbye())


def test_interactive_session_ends_at_end_of_input(tiny_components, images):
    result = CliRunner().invoke(cli, [*TINY, "chat", "--max-new-tokens", "3"], input="hello\n")
    assert result.exit_code == 0 and _goodbye() in result.output


def test_mistakes_are_one_line_errors(tiny_components, images, tmp_path):
    result = CliRunner().invoke(cli, [*TINY, "chat", "--image", str(tmp_path / "cat.jpg"), "hi"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    result = CliRunner().invoke(cli, [*TINY, "chat", "--checkpoint", str(tmp_path / "no_run"), "hi"])
    assert result.exit_code == 1 and "run directory not found" in result.output
    result = CliRunner().invoke(cli, [*TINY, "chat", "--beams", "0", "hi"])
    assert result.exit_code == 1 and "num_beams must be >= 1" in result.output
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "chat", "hi"])
    assert result.exit_code == 1 and "vision encoder" in result.output
