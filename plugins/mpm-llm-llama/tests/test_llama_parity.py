"""The plugin computes what transformers computes: same logits (fp32, 1e-5) and
the same greedy generation, for Llama (``llama``) and Qwen2 (``hf-causal-lm``)."""

from __future__ import annotations

import pytest
import torch

from mpm_framework.contracts.prompt import Turn


def _load(name, path):
    from mpm_llm_llama.model import HFCausalLM, LlamaLLM

    cls = LlamaLLM if name == "llama" else HFCausalLM
    return cls.from_pretrained(path).eval()


def _reference(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path)).eval()


def greedy(llm, embeds, batch, steps):
    """Greedy decoding through the plugin's prefill/decode (no early stop)."""
    logits, state = llm.prefill(embeds, batch)
    out = []
    for _ in range(steps):
        token = logits.argmax(-1)
        out.append(token)
        logits, state = llm.decode(token, state)
    return torch.stack(out, 1)


def _prompts(llm):
    return [
        llm.format_prompt([Turn("user", "What is in the image?")], add_generation_prompt=True),
        llm.format_prompt([Turn("system", "Answer briefly."), Turn("user", "ein roter Kreis links"),
                           Turn("assistant", "a red circle"), Turn("user", "左边有什么?")],
                          add_generation_prompt=True),
        llm.encode_text("two blue squares"),
    ]


@pytest.mark.parametrize("name,fixture", [("llama", "llama_dir"), ("hf-causal-lm", "qwen2_dir")])
def test_logits_match_transformers(name, fixture, request):
    path = request.getfixturevalue(fixture)
    llm, ref = _load(name, path), _reference(path)
    assert type(llm.hf) is type(ref)
    batch = llm.collate(_prompts(llm), padding_side="right")
    with torch.no_grad():
        ours = llm(llm.embed_tokens(batch["input_ids"]), batch).logits
        theirs = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours[real], theirs[real], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,fixture", [("llama", "llama_dir"), ("hf-causal-lm", "qwen2_dir")])
def test_greedy_generation_matches_transformers_left_padded(name, fixture, request):
    path = request.getfixturevalue(fixture)
    llm, ref = _load(name, path), _reference(path)
    ref.generation_config.eos_token_id = None  # run the full length, as the loop below does
    batch = llm.collate(_prompts(llm), padding_side="left")
    assert (batch["attention_mask"][:, 0] == 0).any(), "the batch must hold left padding"
    steps = 12
    with torch.no_grad():
        ours = greedy(llm, llm.embed_tokens(batch["input_ids"]), batch, steps)
        theirs = ref.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              do_sample=False, max_new_tokens=steps, pad_token_id=llm.pad_token_id)
    assert torch.equal(ours, theirs[:, batch["input_ids"].shape[1]:])
    # The tokens vary: a broken cache that repeats one token would not pass.
    assert len(set(ours.flatten().tolist())) > 3


def test_prefill_logits_equal_the_full_pass_at_every_step(llama_dir):
    """Decode-step logits equal a full forward over the grown sequence."""
    llm = _load("llama", llama_dir)
    batch = llm.collate(_prompts(llm)[:2], padding_side="left")
    with torch.no_grad():
        logits, state = llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        for _ in range(3):
            token = logits.argmax(-1)
            logits, state = llm.decode(token, state)
            ids = torch.cat([ids, token[:, None]], 1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            full = llm(llm.embed_tokens(ids), {"attention_mask": mask}).logits[:, -1]
            torch.testing.assert_close(logits, full, rtol=0, atol=1e-5)


def test_reorder_state_selects_rows_and_leaves_the_old_state_intact(llama_dir):
    llm = _load("llama", llama_dir)
    batch = llm.collate(_prompts(llm)[:2], padding_side="left")
    with torch.no_grad():
        logits, state = llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)
        token = logits.argmax(-1)
        swapped = llm.reorder_state(state, torch.tensor([1, 0, 1]))
        logits_sw, _ = llm.decode(token[[1, 0, 1]], swapped)
        logits_orig, _ = llm.decode(token, state)  # the original state still decodes
    torch.testing.assert_close(logits_sw, logits_orig[[1, 0, 1]], rtol=0, atol=1e-5)
    assert state.cache.get_seq_length() == batch["input_ids"].shape[1]


def test_prefill_refuses_right_padding(llama_dir):
    from mpm_framework.errors import MPMError

    llm = _load("llama", llama_dir)
    batch = llm.collate(_prompts(llm), padding_side="right")
    with pytest.raises(MPMError, match="left-padded"):
        llm.prefill(llm.embed_tokens(batch["input_ids"]), batch)


def test_hidden_states_for_the_alignment_probe(llama_dir):
    llm, ref = _load("llama", llama_dir), _reference(llama_dir)
    batch = llm.collate([llm.encode_text("ein roter Kreis links")])
    with torch.no_grad():
        ours = llm(llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True).hidden_states
        theirs = ref(input_ids=batch["input_ids"], output_hidden_states=True).hidden_states
    assert len(ours) == llm.num_layers + 1 == len(theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
