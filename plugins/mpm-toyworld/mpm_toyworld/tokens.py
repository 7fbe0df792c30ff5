"""How the pivot's tokenizer cuts each language (a diagnostic for the French
question of issue 22): tokens per caption of the *same* held-out scenes in
every language, and the share of captions' words kept whole (one token)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .split import sample_split_scene, split_rng


def token_stats(packs: Mapping[str, Any], tokenizer_file: Path, seed: int, n: int = 200) -> dict[str, dict[str, float]]:
    """``{lang: {"tokens_per_caption", "words_per_caption", "whole_words"}}`` on ``n``
    held-out scenes, each captioned once per language."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    rng = split_rng(seed, "token-stats")
    scenes = [sample_split_scene(rng, "eval") for _ in range(n)]
    out: dict[str, dict[str, float]] = {}
    for code, pack in packs.items():
        tokens = words = whole = 0
        for scene in scenes:
            caption = pack.realise_caption(scene, rng)
            tokens += len(tok.encode(caption, add_special_tokens=False).ids)
            spaced = " " in caption.strip()
            parts = caption.split() if spaced else list(caption)
            words += len(parts)
            # inside a sentence a word of a spaced script carries its leading space (byte-level BPE)
            whole += sum(len(tok.encode(" " + w if spaced else w, add_special_tokens=False).ids) == 1
                         for w in parts)
        out[code] = {"tokens_per_caption": round(tokens / n, 3), "words_per_caption": round(words / n, 3),
                     "whole_words": round(whole / max(words, 1), 3)}
    return out
