"""Helpers for tests: a small vocabulary file in the official format, tiny
random CPM-Bee models and checkpoints saved in the official key layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import CPMBeeLLMConfig
from .tokenizer import SPECIAL_HEAD

# Enough to spell English and a few Chinese test sentences; multi-character
# pieces exercise the greedy longest match ("the" beats "th" + "e").
TEST_TOKENS: list[str] = [
    *SPECIAL_HEAD,
    *[chr(c) for c in range(33, 127)],
    "th", "the", "he", "in", "ing", "an", "and", "is", "it", "of", "on", "at", "er", "re",
    "红", "色", "圆", "形", "的", "是", "什", "么", "图", "片", "中", "有", "一", "个", "你", "好",
    "你好", "中国", "国", "图片", "颜色", "颜", "？", "，", "。", "！",
]


def write_test_vocab(path: str | Path) -> Path:
    """Write :data:`TEST_TOKENS` as an official ``vocab.txt``; returns its path."""
    from .tokenizer import CPMBeeTokenizer

    p = Path(path)
    if p.is_dir():
        p = p / "vocab.txt"
    CPMBeeTokenizer.write_vocab(TEST_TOKENS, p)
    return p


def tiny_cpm_bee(vocab: str | Path | None = None, seed: int = 0, **options: Any):
    """A tiny random CPM-Bee (``options`` are CPMBeeLLMConfig fields; ``arch``
    overrides the architecture)."""
    from .pivot import CPMBeeLLM

    config = CPMBeeLLMConfig(size="tiny", vocab=str(vocab) if vocab else None, seed=seed, **options)
    return CPMBeeLLM.from_config(config)


def save_official(model: torch.nn.Module, path: str | Path, prefix: str = "",
                  extra: dict[str, torch.Tensor] | None = None) -> Path:
    """``torch.save`` of the state dict under official names (``prefix`` = ``llm.``
    makes it look like a VisCPM checkpoint; ``extra`` adds foreign tensors)."""
    state = {prefix + k: v.detach().clone() for k, v in model.state_dict().items()}
    state.update(extra or {})
    torch.save(state, str(path))
    return Path(path)
