"""The LLaMA plugin's ``merge_decode_states``: decoding the merged state gives
every row the logits it gets in its own state (the server's continuous batching
adds new requests to a running batch this way)."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.prompt import Turn
from mpm_framework.testing import tiny_chat_stack

pytest.importorskip("mpm_llm_llama")

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "max_position_embeddings": 256, "seed": 5}


@pytest.fixture(scope="module")
def llm():
    from mpm_llm_llama.config import LlamaLLMConfig, TinyConfig
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_config(LlamaLLMConfig(tiny=TinyConfig(**TINY)), BuildContext()).eval()


def _prefill(llm, questions):
    encodings = [llm.format_prompt([Turn("user", q)], add_generation_prompt=True) for q in questions]
    batch = llm.collate(encodings, padding_side="left")
    return llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)


@torch.no_grad()
def test_merged_state_decodes_each_row_as_its_own_state(llm):
    # a running batch of two rows, several steps ahead, and a new request with a longer prompt
    _, running = _prefill(llm, ["Hi", "Wie geht es dir heute?"])
    tokens = torch.tensor([5, 9])
    for step in range(3):
        _, running = llm.decode(tokens + step, running)
    _, joining = _prefill(llm, ["左边有什么? Was ist oben rechts zu sehen, und welche Farbe hat es?"])
    assert joining.attention_mask.shape[1] != running.attention_mask.shape[1]
    merged = llm.merge_decode_states([running, joining])
    assert merged is not None and merged.attention_mask.shape[0] == 3
    next_tokens = torch.tensor([11, 12, 13])
    merged_logits, merged = llm.decode(next_tokens, merged)
    own_running, running = llm.decode(next_tokens[:2], running)
    own_joining, joining = llm.decode(next_tokens[2:], joining)
    torch.testing.assert_close(merged_logits, torch.cat([own_running, own_joining]), atol=1e-5, rtol=1e-5)
    # and it stays so over further steps and after a row leaves (reorder_state)
    merged = llm.reorder_state(merged, torch.tensor([0, 2]))
    merged_logits, _ = llm.decode(torch.tensor([3, 4]), merged)
    own_first, _ = llm.decode(torch.tensor([3]), llm.reorder_state(running, torch.tensor([0])))
    own_joining, _ = llm.decode(torch.tensor([4]), joining)
    torch.testing.assert_close(merged_logits, torch.cat([own_first, own_joining]), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_states_given_are_left_as_they_were(llm):
    _, first = _prefill(llm, ["Hi"])
    _, second = _prefill(llm, ["A much longer question than the first one"])
    shapes = [layer.keys.shape for layer in first.cache.layers]
    mask = first.attention_mask.clone()
    llm.merge_decode_states([first, second])
    assert [layer.keys.shape for layer in first.cache.layers] == shapes
    assert torch.equal(first.attention_mask, mask)


def test_the_contract_default_is_not_supported():
    assert tiny_chat_stack().llm.merge_decode_states([object(), object()]) is None
