"""The core decoding loop driving the LLaMA plugin, against transformers' own ``generate``.

Skipped when the plugin (plugins/mpm-llm-llama) is not installed.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.prompt import Turn
from mpm_framework.inference.generation import GenerationConfig, generate

pytest.importorskip("mpm_llm_llama")

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "max_position_embeddings": 256, "seed": 3}
QUESTIONS = ["What is in the image?", "左边有什么?", "Was ist oben rechts zu sehen, und welche Farbe hat es?"]


@pytest.fixture(scope="module")
def llm():
    from mpm_llm_llama.config import LlamaLLMConfig, TinyConfig
    from mpm_llm_llama.model import LlamaLLM

    model = LlamaLLM.from_config(LlamaLLMConfig(tiny=TinyConfig(**TINY)), BuildContext()).eval()
    with torch.no_grad():  # clear-cut choices: a random init is nearly uniform
        model.hf.get_output_embeddings().weight.mul_(25.0)
    return model


def _prompts(llm):
    encodings = [llm.format_prompt([Turn("user", q)], add_generation_prompt=True) for q in QUESTIONS]
    return llm.collate(encodings, padding_side="left")


def _hf(llm, batch, **kw):
    out = llm.hf.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          eos_token_id=list(llm.stop_token_ids), pad_token_id=llm.pad_token_id, do_sample=False, **kw)
    rows = []
    for row in out[:, batch["input_ids"].shape[1]:].tolist():
        ends = [i for i, t in enumerate(row) if t in llm.stop_token_ids]
        rows.append(row[: ends[0]] if ends else row)
    return rows


def _ours(llm, batch, **kw):
    with torch.no_grad():
        return generate(llm, llm.embed_tokens(batch["input_ids"]), batch, GenerationConfig(**kw))


def test_greedy_equals_transformers_generate(llm):
    batch = _prompts(llm)
    ours = _ours(llm, batch, max_new_tokens=10)
    assert ours == _hf(llm, batch, max_new_tokens=10)
    assert ours == [_ours(llm, llm.collate([enc], padding_side="left"), max_new_tokens=10)[0]
                    for enc in [llm.format_prompt([Turn("user", q)], add_generation_prompt=True) for q in QUESTIONS]]


def test_beam_search_equals_transformers_generate(llm):
    batch = _prompts(llm)
    kw = dict(max_new_tokens=8, num_beams=3, repetition_penalty=1.1)
    assert _ours(llm, batch, **kw) == _hf(llm, batch, **kw)


def test_chat_stack_with_the_llama_plugin(llm):
    from mpm_framework.connectors.modules import MLPConnector
    from mpm_framework.lang_en.pack import EnglishPack
    from mpm_framework.stacks.chat import ChatStack
    from mpm_framework.testing import TinyVision, TinyVisionConfig

    vision = TinyVision(TinyVisionConfig())
    stack = ChatStack(llm, vision, MLPConnector("mlp2x_gelu", vision.hidden_size, llm.hidden_size),
                      {"en": EnglishPack()})
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    batched = stack.generate(images, QUESTIONS, max_new_tokens=8)
    one_by_one = [stack.chat(img, q, max_new_tokens=8)[0] for img, q in zip(images, QUESTIONS)]
    assert batched == one_by_one
    _answer, history = stack.chat(images[0], QUESTIONS[0], max_new_tokens=8)
    stream = stack.stream_chat(None, "And then?", history=history, max_new_tokens=8)
    assert "".join(stream) == stream.answer == stack.chat(None, "And then?", history=history, max_new_tokens=8)[0]
