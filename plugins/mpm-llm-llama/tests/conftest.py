"""Tiny checkpoints written the way real ones are (save_pretrained: safetensors,
config.json, tokenizer.json), shared by the plugin's tests."""

from __future__ import annotations

import shutil

import pytest
import torch

from mpm_framework.testing import mpm_plugin, one_thread, tiny_components  # noqa: F401  (fixtures; one_thread is autouse)

CORPUS = [
    "a red circle on the left", "two blue squares at the top", "a green triangle in the middle",
    "ein roter Kreis links", "zwei blaue Quadrate oben", "ein grünes Dreieck in der Mitte",
    "左边有一个红色的圆", "上面有两个蓝色的正方形", "中间有一个绿色的三角形",
    "un cercle rouge à gauche", "deux carrés bleus en haut", "What is in the image?",
] * 4

# The ChatML format (Qwen2 and others), written for these tests.
CHATML_TEMPLATE = (
    "{% for m in messages %}"
    "{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Llama-3 style headers with an end-of-turn token different from eos.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

SIZES = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
             max_position_embeddings=256)


def toy_tokenizer(path=None):
    from mpm_llm_llama.toy import train_tokenizer

    return train_tokenizer(CORPUS, vocab_size=400, path=path)


def chatml_tokenizer():
    tok = toy_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]},
                           replace_extra_special_tokens=False)
    tok.chat_template = CHATML_TEMPLATE
    return tok


def llama3_tokenizer():
    tok = toy_tokenizer()
    tok.add_special_tokens(
        {"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
        replace_extra_special_tokens=False,
    )
    tok.chat_template = LLAMA3_TEMPLATE
    return tok


def _plain_tokenizer():
    tok = toy_tokenizer()
    tok.chat_template = None
    return tok


TOKENIZERS = {"toy": toy_tokenizer, "chatml": chatml_tokenizer, "llama3": llama3_tokenizer,
              "plain": _plain_tokenizer}


@pytest.fixture
def make_tokenizer():
    """``make_tokenizer(kind)``: a fresh test tokenizer; kinds: toy (role tokens),
    chatml, llama3 (end-of-turn differs from eos), plain (no chat template)."""
    return lambda kind="toy": TOKENIZERS[kind]()


def _save(model, tokenizer, path):
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def toy_tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy_tokenizer")
    toy_tokenizer(path)
    return path


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    """A random LlamaForCausalLM with the toy tokenizer (which has <image_pad>)."""
    from mpm_llm_llama.toy import tiny_llama_config
    from transformers import LlamaForCausalLM

    tok = toy_tokenizer()
    torch.manual_seed(0)
    # A wide init spreads the logits, so greedy argmax is never a near-tie.
    model = LlamaForCausalLM(tiny_llama_config(tok, initializer_range=0.3, **SIZES))
    return _save(model, tok, tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory):
    """A random Qwen2ForCausalLM (q/k/v biases, tied embeddings) with a ChatML tokenizer."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = chatml_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok) + 7, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, initializer_range=0.3,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(1)
    return _save(Qwen2ForCausalLM(config), tok, tmp_path_factory.mktemp("qwen2"))


@pytest.fixture
def llama_copy(llama_dir, tmp_path):
    """A private copy a test may modify."""
    return shutil.copytree(llama_dir, tmp_path / "llama")
