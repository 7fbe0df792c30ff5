"""The core decoding loop driving the CPM-Bee plugin (segment-structured prompts,
left padding, its own KV cache): batched equals one-by-one, streaming equals
chat. Skipped when plugins/mpm-llm-cpm-bee is not installed."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

pytest.importorskip("mpm_llm_cpm_bee")

QUESTIONS = ["What colour is the shape?", "左边有什么?", "Wie viele Formen gibt es auf dem Bild?"]


@pytest.fixture(scope="module")
def stack():
    from mpm_llm_cpm_bee.config import CPMBeeLLMConfig
    from mpm_llm_cpm_bee.pivot import CPMBeeLLM

    from mpm_framework.connectors.modules import MLPConnector
    from mpm_framework.contracts.base import BuildContext
    from mpm_framework.lang_en.pack import EnglishPack
    from mpm_framework.stacks.chat import ChatStack
    from mpm_framework.testing import TinyVision, TinyVisionConfig

    llm = CPMBeeLLM.from_config(CPMBeeLLMConfig(size="tiny"), BuildContext())
    with torch.no_grad():  # clear-cut choices: a random init is nearly uniform
        llm.input_embedding.weight.mul_(4.0)
    vision = TinyVision(TinyVisionConfig())
    return ChatStack(llm, vision, MLPConnector("mlp2x_gelu", vision.hidden_size, llm.hidden_size),
                     {"en": EnglishPack()}).eval()


@pytest.mark.parametrize("beams", [1, 3])
def test_batched_equals_one_by_one(stack, beams):
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")] + [None]
    batched = stack.generate(images, QUESTIONS, max_new_tokens=6, num_beams=beams)
    assert batched == [stack.chat(img, q, max_new_tokens=6, num_beams=beams)[0]
                       for img, q in zip(images, QUESTIONS)]
    assert any(batched)


def test_second_turn_and_streaming(stack):
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    _, history = stack.chat(image, QUESTIONS[0], max_new_tokens=5)
    answer, _ = stack.chat(None, "And the size?", history=history, max_new_tokens=5)
    stream = stack.stream_chat(image, "And the size?", history=history, max_new_tokens=5)
    assert "".join(stream) == answer == stream.answer
