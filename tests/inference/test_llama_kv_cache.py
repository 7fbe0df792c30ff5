"""The LLaMA plugin's in-place KV cache (``kv_cache.GrowingLayer``): decoding
gives the logits of transformers' concatenating ``DynamicLayer`` across buffer
growth, row removal and merges, and decode states stay immutable (a state
decoded twice gives the same answer; its first child is not overwritten)."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.prompt import Turn

pytest.importorskip("mpm_llm_llama")

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "max_position_embeddings": 512, "seed": 7}


@pytest.fixture(scope="module")
def llm():
    from mpm_llm_llama.config import LlamaLLMConfig, TinyConfig
    from mpm_llm_llama.model import LlamaLLM

    return LlamaLLM.from_config(LlamaLLMConfig(tiny=TinyConfig(**TINY)), BuildContext()).eval()


def _run(llm, steps: int) -> list[torch.Tensor]:
    encodings = [llm.format_prompt([Turn("user", q)], add_generation_prompt=True)
                 for q in ("Hi", "Was ist oben rechts zu sehen?", "左边有什么?")]
    batch = llm.collate(encodings, padding_side="left")
    logits, state = llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)
    out = [logits]
    for step in range(steps):
        if step == 20:  # a row leaves, as in the server
            state = llm.reorder_state(state, torch.tensor([0, 2]))
        if step == 40:  # a request joins
            one = llm.collate([encodings[1]], padding_side="left")
            joining_logits, joining = llm.prefill(llm.embed_tokens(one["input_ids"]), one)
            state = llm.merge_decode_states([state, joining])
            out.append(joining_logits)
        tokens = torch.arange(state.attention_mask.shape[0]) * 7 + step + 3
        logits, state = llm.decode(tokens, state)
        out.append(logits)
    return out


@torch.no_grad()
def test_in_place_cache_equals_transformers_dynamic_cache(llm, monkeypatch):
    from mpm_llm_llama import kv_cache

    grown = _run(llm, 110)  # past the first buffer's room (prompt + 64 spare tokens)
    monkeypatch.setattr(kv_cache, "use_growing_layers", lambda cache: None)
    reference = _run(llm, 110)
    assert len(grown) == len(reference)
    for ours, theirs in zip(grown, reference):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_a_state_decoded_twice_is_unchanged(llm):
    from mpm_llm_llama.kv_cache import GrowingLayer

    batch = llm.collate([llm.format_prompt([Turn("user", "Hi")], add_generation_prompt=True)], padding_side="left")
    _, state = llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)
    assert all(type(layer) is GrowingLayer for layer in state.cache.layers)
    first_logits, first = llm.decode(torch.tensor([5]), state)
    second_logits, _ = llm.decode(torch.tensor([9]), state)  # a branch from the same state
    again_logits, _ = llm.decode(torch.tensor([5]), state)
    torch.testing.assert_close(again_logits, first_logits)
    assert not torch.allclose(first_logits, second_logits)
    # the first child still holds token 5's keys: its next step is unchanged by the branch
    after_first, _ = llm.decode(torch.tensor([11]), first)
    _, fresh = llm.decode(torch.tensor([5]), state)
    expected, _ = llm.decode(torch.tensor([11]), fresh)
    torch.testing.assert_close(after_first, expected)
