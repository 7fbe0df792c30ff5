"""Toy-world helpers: a tokenizer trained on a corpus and a tiny Llama to pretrain.

The toy world trains its pivot LLM from scratch, so it needs a tokenizer built
from its own multilingual corpus. :func:`train_tokenizer` trains a byte-level
BPE with ``tokenizers`` (any script, no unknown tokens) and saves it in the
Hugging Face format with the special tokens MPM needs and a chat template, so
the saved directory loads with ``AutoTokenizer`` like any checkpoint's::

    from mpm_llm_llama.toy import build_tiny_llama, train_tokenizer

    tok = train_tokenizer(corpus, vocab_size=2000, path="runs/toy/pivot")
    build_tiny_llama("runs/toy/pivot", hidden_size=128, num_layers=4)
    llm = compose(llm="llama", ..., overrides=["model.llm.path=runs/toy/pivot"])
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .prompting import TOY_CHAT_TEMPLATE

BOS, EOS, PAD, IMAGE = "<s>", "</s>", "<pad>", "<image_pad>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, IMAGE, *ROLE_TOKENS)  # ids 0.. in this order


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, path: str | Path | None = None,
    min_frequency: int = 2, split_unspaced: bool = False,
) -> Any:
    """Train a byte-level BPE on ``texts``; return a transformers fast tokenizer.

    The vocabulary holds the special tokens (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2,
    ``<image_pad>`` 3, role tokens), the 256 byte symbols and up to
    ``vocab_size`` in total with merges. Plain encoding prepends ``<s>``. With
    ``path`` the tokenizer is saved there (``tokenizer.json``,
    ``tokenizer_config.json``, ``chat_template.jinja``).

    ``split_unspaced=True`` makes every character of a script written without
    spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan, by Unicode block:
    :mod:`mpm_framework.text.scripts`) its own pre-token. Byte-level BPE
    otherwise treats a run of such characters as one word, so merges cross
    word boundaries ("一个小的", "でした" + the next word) and one word takes
    different tokens in different sentences; a pivot trained from scratch then
    has to learn every fused form apart. Split, merges stay inside a character
    and words are sequences of characters, as in most multilingual tokenizers.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_unspaced:
        from mpm_framework.text.scripts import unspaced_character_class

        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(unspaced_character_class()), behavior="isolated"), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[IMAGE, *ROLE_TOKENS],
    )
    fast.chat_template = TOY_CHAT_TEMPLATE
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(path))
    return fast


def byte_tokenizer(path: str | Path | None = None) -> Any:
    """The same format without merges: 256 byte symbols + the special tokens.
    Random models built without a tokenizer use it."""
    return train_tokenizer([], vocab_size=0, path=path)


def tiny_llama_config(
    tokenizer: Any | None = None,
    vocab_size: int | None = None,
    hidden_size: int = 64,
    intermediate_size: int | None = None,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    max_position_embeddings: int = 512,
    tie_word_embeddings: bool = False,
    **extra: Any,
) -> Any:
    """A ``transformers.LlamaConfig`` for a small model; special-token ids and the
    vocabulary size come from ``tokenizer`` when given."""
    from transformers import LlamaConfig

    if vocab_size is None:
        if tokenizer is None:
            raise ValueError("give a tokenizer or a vocab_size")
        vocab_size = len(tokenizer)
    ids = {}
    if tokenizer is not None:
        ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        **ids,
        **extra,
    )


def build_tiny_llama(path: str | Path, seed: int = 0, **sizes: Any) -> Path:
    """Save a randomly initialised ``LlamaForCausalLM`` next to the tokenizer
    already saved in ``path`` (safetensors + config), ready for ``path=``."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    config = tiny_llama_config(tokenizer, **sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(str(path))
    return path
