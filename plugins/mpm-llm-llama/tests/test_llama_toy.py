"""Toy-world helpers: a byte-level BPE trained on a corpus, saved in the Hugging
Face format, and a tiny Llama built next to it that the plugin loads and trains."""

from __future__ import annotations

import torch

from mpm_framework.contracts.prompt import IGNORE_INDEX, Turn

CORPUS = [
    "a red circle on the left", "two blue squares at the top", "ein roter Kreis links",
    "zwei blaue Quadrate oben", "左边有一个红色的圆", "上面有两个蓝色的正方形",
] * 20


def test_trained_tokenizer_round_trips_every_script(tmp_path):
    from mpm_llm_llama.toy import SPECIAL_TOKENS, train_tokenizer
    from transformers import AutoTokenizer

    train_tokenizer(CORPUS, vocab_size=350, path=tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))  # the saved files load as any checkpoint's
    assert len(tok) <= 350
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    for text in ["ein roter Kreis links", "左边有一个红色的圆", "unseen: Ωμέγα ✓ 🙂"]:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    # merges were learned: corpus text needs fewer tokens than bytes
    assert len(tok("zwei blaue Quadrate oben", add_special_tokens=False)["input_ids"]) < 12
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == "<s><|user|>hi<|assistant|>"


def test_tiny_llama_config_takes_ids_from_the_tokenizer():
    from mpm_llm_llama.toy import byte_tokenizer, tiny_llama_config

    tok = byte_tokenizer()
    config = tiny_llama_config(tok, hidden_size=48, num_layers=3, num_heads=6, num_kv_heads=2)
    assert config.vocab_size == len(tok) == 263
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (3, 6, 2)
    assert config.intermediate_size == 4 * 48


def test_toy_pivot_builds_loads_and_learns(tmp_path):
    from mpm_llm_llama.model import LlamaLLM
    from mpm_llm_llama.toy import build_tiny_llama, train_tokenizer

    train_tokenizer(CORPUS, vocab_size=300, path=tmp_path)
    build_tiny_llama(tmp_path, hidden_size=32, num_layers=2, num_heads=4)
    llm = LlamaLLM.from_pretrained(tmp_path)
    assert llm.eos_token_id == 2 and llm.image_token_id == 3
    assert len(llm.tokenizer) == llm.vocab_size  # the image token was already there: no resize

    conv = [Turn("user", "<image>\nWhat is on the left?"), Turn("assistant", "ein roter Kreis")]
    enc = llm.format_prompt(conv, num_image_tokens=2)
    assert llm.decode_text([t for t in enc.labels if t != IGNORE_INDEX]) == "ein roter Kreis"
    batch = llm.collate([enc, llm.encode_text("zwei blaue Quadrate oben")])
    optimizer = torch.optim.AdamW(llm.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = llm(llm.embed_tokens(batch["input_ids"]), batch, labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]

    # what it learned comes back through generation
    prompt = llm.collate([llm.format_prompt(conv[:1], 2, add_generation_prompt=True)], padding_side="left")
    llm.eval()
    with torch.no_grad():
        logits, state = llm.prefill(llm.embed_tokens(prompt["input_ids"]), prompt)
        out = []
        while len(out) < 10:
            token = logits.argmax(-1)
            if token.item() == llm.eos_token_id:
                break
            out.append(token.item())
            logits, state = llm.decode(token, state)
    assert llm.decode_text(out) == "ein roter Kreis"
