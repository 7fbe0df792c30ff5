"""``hf-causal-lm`` beyond Llama and Qwen2: architectures with ALiBi and no sdpa
(BLOOM), learned positions (GPT-2), sliding windows and logit soft-capping
(Gemma 2, Mistral), built at random from ``model_type``. For each: logits,
answer-only loss, greedy decoding and (where supported) packing agree with
transformers."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.prompt import Turn

ARCHITECTURES = ["bloom", "gpt2", "mistral", "gemma2"]


def _build(model_type):
    from mpm_llm_llama.config import HFCausalLMConfig, TinyConfig
    from mpm_llm_llama.model import HFCausalLM

    return HFCausalLM.from_config(HFCausalLMConfig(
        model_type=model_type, tiny=TinyConfig(hidden_size=32, intermediate_size=64, num_heads=4, num_kv_heads=2),
    )).eval()


def _encodings(llm):
    return [
        llm.format_prompt([Turn("user", "<image> what is it?"), Turn("assistant", "a red circle")], 2),
        llm.encode_text("zwei blaue Quadrate oben"),
        llm.format_prompt([Turn("user", "左边?"), Turn("assistant", "红色的圆")]),
    ]


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_any_causal_lm_matches_transformers(model_type):
    llm = _build(model_type)
    assert llm.hf.config.model_type == model_type
    encodings = _encodings(llm)
    batch = llm.collate(encodings)
    embeds = llm.embed_tokens(batch["input_ids"])
    with torch.no_grad():
        ours = llm(embeds, batch).logits
        theirs = llm.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        fast = llm(embeds, batch, labels=batch["labels"]).loss
        reference = llm.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           labels=batch["labels"]).loss
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[real], theirs[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5)

    left = llm.collate(encodings, padding_side="left")
    llm.hf.generation_config.eos_token_id = None
    with torch.no_grad():
        logits, state = llm.prefill(llm.embed_tokens(left["input_ids"]), left)
        tokens = []
        for _ in range(6):
            tokens.append(logits.argmax(-1))
            logits, state = llm.decode(tokens[-1], state)
        expected = llm.hf.generate(input_ids=left["input_ids"], attention_mask=left["attention_mask"],
                                   do_sample=False, max_new_tokens=6, pad_token_id=llm.pad_token_id)
    assert torch.equal(torch.stack(tokens, 1), expected[:, left["input_ids"].shape[1]:])

    if not llm.supports_packing:
        assert model_type == "bloom"  # ALiBi masks are built inside the model: no 4D mask
        assert llm.pack_sequences(encodings, 64) == encodings
        return
    packed = llm.collate(llm.pack_sequences(encodings, sum(len(e) for e in encodings)))
    assert packed["input_ids"].shape[0] == 1
    with torch.no_grad():
        singles = [llm.collate([e]) for e in encodings]
        outs = [llm(llm.embed_tokens(b["input_ids"]), b, labels=b["labels"]) for b in singles]
        together = llm(llm.embed_tokens(packed["input_ids"]), packed, labels=packed["labels"])
    weighted = sum(o.loss.item() * o.num_label_tokens for o in outs) / sum(o.num_label_tokens for o in outs)
    assert together.loss.item() == pytest.approx(weighted, abs=1e-5)


def test_bloom_without_sdpa_runs_eager():
    assert _build("bloom").hf.config._attn_implementation == "eager"
