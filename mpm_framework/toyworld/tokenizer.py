"""The toy pivot's tokenizer: the llama plugin's toy format, CJK-aware.

``mpm_llm_llama.toy.train_tokenizer`` trains a byte-level BPE whose
pre-tokenizer keeps a run of Han characters together, so merges cross word
boundaries: "一个小的", "圆形在", "色的大" become single tokens and one
attribute ("大", "黄色") takes different tokens in different sentences. A
from-scratch pivot then has to learn each fused form separately, and Chinese
trails the other languages for reasons that have nothing to do with MPM.

This trains the same kind of tokenizer -- same special tokens in the same
order, same chat template, same files, loaded by the plugin like any other --
with one change: every CJK character is its own pre-token, so merges stay
inside a character (its UTF-8 bytes) and words are sequences of characters,
as in most multilingual tokenizers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

# CJK unified ideographs (+ extension A, compatibility) and CJK punctuation / full-width forms.
CJK_CHARACTER = r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"


def train_toy_tokenizer(texts: Iterable[str], vocab_size: int, path: str | Path,
                        min_frequency: int = 2) -> Any:
    """Train and save (``path``) a tokenizer in the llama plugin's toy format."""
    from mpm_llm_llama.prompting import TOY_CHAT_TEMPLATE
    from mpm_llm_llama.toy import BOS, EOS, IMAGE, PAD, ROLE_TOKENS, SPECIAL_TOKENS
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CJK_CHARACTER), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
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
    Path(path).mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(path))
    return fast
