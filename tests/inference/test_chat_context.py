"""A conversation longer than the context window: a clear error with both numbers,
or (when asked) the oldest turns dropped with a warning; the answer is capped so
prompt + answer fit."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mpm_framework.contracts.prompt import IMAGE_MARKER, Turn
from mpm_framework.inference.chat import drop_oldest_exchange
from mpm_framework.inference.generation import ContextLengthError

pytest.importorskip("mpm_llm_llama")

WINDOW = 64
OVERRIDES = ["model.llm.tiny.hidden_size=32", "model.llm.tiny.intermediate_size=64",
             f"model.llm.tiny.max_position_embeddings={WINDOW}"]


@pytest.fixture(scope="module")
def stack():
    from mpm_framework import compose

    return compose(llm="llama", vision="clip", overrides=OVERRIDES)


@pytest.fixture
def image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))


def test_too_long_prompt_names_both_numbers(stack):
    with pytest.raises(ContextLengthError) as info:
        stack.chat(None, "word " * 80, max_new_tokens=4)
    assert info.value.context_window == WINDOW and info.value.prompt_tokens > WINDOW
    assert f"{info.value.prompt_tokens} tokens" in str(info.value) and f"{WINDOW} tokens" in str(info.value)
    with pytest.raises(ContextLengthError):  # the streamed path checks too
        list(stack.stream_chat(None, "word " * 80, max_new_tokens=4))


def test_truncation_drops_oldest_turns_and_keeps_the_image(stack, image):
    _, history = stack.chat(image, "What is this?", max_new_tokens=4)
    question = "tell me more please " * 2
    with pytest.raises(ContextLengthError):
        stack.chat(None, question, history=history, max_new_tokens=4)
    with pytest.warns(UserWarning, match="dropped its oldest turns"):
        answer, longer = stack.chat(None, question, history=history, max_new_tokens=4, truncate_history=True)
    assert longer.turns[-1] == Turn("assistant", answer)
    assert len(longer.turns) == 2 and longer.turns[0].content.startswith(IMAGE_MARKER)
    assert longer.image_features is history.image_features  # the image was not encoded again
    # the answer is capped so that prompt + answer fit the window
    prompt = len(stack.encode_conversation(longer.turns[:-1], add_generation_prompt=True))
    assert prompt < WINDOW


def test_answer_is_capped_at_the_window(stack):
    from mpm_framework.inference.chat import fit_context
    from mpm_framework.inference.generation import GenerationConfig

    turns = [Turn("user", "hello")]
    _, encoding, config = fit_context(stack, turns, GenerationConfig(max_new_tokens=1000))
    assert config.max_new_tokens == WINDOW - len(encoding)


def test_drop_oldest_exchange_moves_the_image_marker():
    turns = [Turn("system", "s"), Turn("user", f"{IMAGE_MARKER}\nq1"), Turn("assistant", "a1"),
             Turn("user", "q2"), Turn("assistant", "a2"), Turn("user", "q3")]
    once = drop_oldest_exchange(turns)
    assert once == [Turn("system", "s"), Turn("user", f"{IMAGE_MARKER}\nq2"), Turn("assistant", "a2"),
                    Turn("user", "q3")]
    assert drop_oldest_exchange(once) == [Turn("system", "s"), Turn("user", f"{IMAGE_MARKER}\nq3")]
    assert drop_oldest_exchange([Turn("user", "only")]) is None


def test_cli_reports_both_numbers():
    from mpm_framework.cli.main import cli

    result = CliRunner().invoke(cli, ["compose", "--llm", "llama", "--vision", "clip", *OVERRIDES, "chat",
                                      "word " * 80, "--max-new-tokens", "4"])
    assert result.exit_code == 1
    assert f"context window is {WINDOW} tokens" in result.output and "Traceback" not in result.output


def test_cli_interactive_truncation_warns_and_goes_on(tmp_path):
    from mpm_framework.cli.main import cli

    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(image)
    script = "What is this?\n" + ("tell me more please " * 2 + "\n") * 2 + "/quit\n"
    args = ["compose", "--llm", "llama", "--vision", "clip", *OVERRIDES, "chat", "--image", str(image),
            "--max-new-tokens", "4", "--no-stream"]
    result = CliRunner().invoke(cli, [*args, "--truncate-history"], input=script)
    assert result.exit_code == 0, result.output
    assert "warning: the conversation" in result.output and "dropped its oldest turns" in result.output
    plain = CliRunner().invoke(cli, args, input=script)  # without the option: an error per turn, chat goes on
    assert plain.exit_code == 0 and f"context window is {WINDOW} tokens" in plain.output
