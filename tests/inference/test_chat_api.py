"""stack.chat / stream_chat / generate on the tiny stack (TinyLLM + TinyVision)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mpm_framework.contracts.prompt import IMAGE_MARKER, Turn
from mpm_framework.errors import ConfigError, MPMError
from mpm_framework.inference import GenerationConfig, History, decode_answer, generate
from mpm_framework.testing import tiny_chat_stack


@pytest.fixture(scope="module")
def stack():
    return tiny_chat_stack()


def _image(seed: int, size: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


class CountCalls:
    """Counts vision encoder forward passes through a forward hook."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _reference_answer(stack, image, turns, **kw):
    """The answer computed from scratch with a fresh image encoding."""
    pixels = stack.image_transform()(image)[None]
    with torch.no_grad():
        features = stack.encode_images(pixels)
        encoding = stack.encode_conversation(turns, add_generation_prompt=True)
        batch = stack.llm.collate([encoding], padding_side="left")
        config = GenerationConfig(**kw)
        ids = generate(stack.llm, stack.embed(batch, features), batch, config)[0]
    return decode_answer(stack.llm, ids, config.stop_strings)


def test_second_turn_reuses_the_encoded_image_and_matches_a_fresh_encode(stack):
    image = _image(0)
    with CountCalls(stack.vision) as counter:
        answer1, history = stack.chat(image, "What is in the picture?", max_new_tokens=12)
        assert counter.calls == 1
        answer2, history2 = stack.chat(None, "And what colour is it?", history=history, max_new_tokens=12)
        _answer3, history3 = stack.chat(image, "Are you sure?", history=history2, max_new_tokens=12)
        assert counter.calls == 1  # the same picture, passed again or not, is not re-encoded
    assert history3.image_features is history.image_features
    turns = [Turn("user", f"{IMAGE_MARKER}\nWhat is in the picture?"), Turn("assistant", answer1),
             Turn("user", "And what colour is it?")]
    assert answer2 == _reference_answer(stack, image, turns, max_new_tokens=12)
    assert answer1 == _reference_answer(stack, image, turns[:1], max_new_tokens=12)
    assert [t.role for t in history3.turns] == ["user", "assistant"] * 3
    assert len(history.turns) == 2  # earlier histories are not mutated


def test_a_new_image_starts_a_new_conversation(stack):
    _, history = stack.chat(_image(0), "What is this?", max_new_tokens=4)
    with CountCalls(stack.vision) as counter:
        _, history2 = stack.chat(_image(1), "And this?", max_new_tokens=4, history=history)
    assert counter.calls == 1
    assert len(history2.turns) == 2 and IMAGE_MARKER in history2.turns[0].content


def test_text_only_then_image_puts_the_image_in_the_asking_turn(stack):
    _, history = stack.chat(None, "Hello", max_new_tokens=4)
    assert not history.has_image
    _, history = stack.chat(_image(2), "What is this?", history=history, max_new_tokens=4)
    assert [IMAGE_MARKER in t.content for t in history.turns] == [False, False, True, False]


@pytest.mark.parametrize("kw", [
    dict(max_new_tokens=20),
    dict(max_new_tokens=20, do_sample=True, seed=3, temperature=0.8),
    dict(max_new_tokens=16, num_beams=3),
])
def test_streaming_concatenates_to_the_answer(stack, kw):
    for seed in range(3):
        image = _image(seed)
        answer, _ = stack.chat(image, "Describe the image.", **kw)
        stream = stack.stream_chat(image, "Describe the image.", **kw)
        pieces = list(stream)
        assert "".join(pieces) == answer == stream.answer
        assert stream.history.turns[-1] == Turn("assistant", answer)
    if not kw.get("num_beams"):
        assert len(pieces) > 1  # really incremental


def test_streaming_holds_back_a_stop_string(stack):
    image = _image(4)
    free, _ = stack.chat(image, "Describe the image.", max_new_tokens=24)
    stop = free[5:8]
    answer, _ = stack.chat(image, "Describe the image.", max_new_tokens=24, stop_strings=[stop])
    assert answer == free[: free.find(stop)].strip()
    pieces = list(stack.stream_chat(image, "Describe the image.", max_new_tokens=24, stop_strings=[stop]))
    assert "".join(pieces) == answer


def test_batched_greedy_equals_one_by_one(stack):
    images = [_image(5), None, _image(6), _image(7, size=64)]
    questions = ["What is in the picture?", "Say something.", "Colour?", "Describe the image in detail."]
    batched = stack.generate(images, questions, max_new_tokens=12, batch_size=3)
    alone = [stack.chat(img, q, max_new_tokens=12)[0] for img, q in zip(images, questions)]
    assert batched == alone
    beams = stack.generate(images, questions, max_new_tokens=8, num_beams=2, batch_size=4)
    assert beams == [stack.chat(img, q, max_new_tokens=8, num_beams=2)[0] for img, q in zip(images, questions)]


def test_images_from_paths_and_tensors(stack, tmp_path):
    image = _image(8)
    path = tmp_path / "cat.png"
    image.save(path)
    from_pil = stack.chat(image, "What is this?", max_new_tokens=8)[0]
    assert stack.chat(str(path), "What is this?", max_new_tokens=8)[0] == from_pil
    assert stack.chat(stack.image_transform()(image), "What is this?", max_new_tokens=8)[0] == from_pil


def test_user_mistakes_are_clear_errors(stack, tmp_path):
    with pytest.raises(MPMError, match="image not found"):
        stack.chat(tmp_path / "missing.jpg", "What is this?")
    with pytest.raises(ConfigError, match="Did you mean 'temperature'"):
        stack.chat(None, "hi", temprature=0.3)
    with pytest.raises(MPMError, match="2 images but 1 questions"):
        stack.generate([None, None], ["a"])
    with pytest.raises(MPMError, match="History"):
        stack.chat(None, "hi", history=[("hi", "there")])
    with pytest.raises(MPMError, match="image marker"):
        stack.chat(_image(0), f"{IMAGE_MARKER} what?")


def test_chat_restores_training_mode(stack):
    stack.train()
    stack.chat(None, "hi", max_new_tokens=2)
    assert stack.training
    stack.eval()


def test_history_reset():
    history = History(turns=[Turn("user", "hi")], image_features=torch.zeros(1, 2, 3))
    assert history.reset().turns == [] and not history.reset().has_image


def test_a_paused_stream_leaves_autograd_and_the_mode_alone(stack):
    stack.train()
    stream = iter(stack.stream_chat(_image(9), "Describe the image.", max_new_tokens=12))
    next(stream)
    assert torch.is_grad_enabled() and stack.training  # between pieces, the caller's state
    list(stream)
    assert torch.is_grad_enabled() and stack.training
    stack.eval()
