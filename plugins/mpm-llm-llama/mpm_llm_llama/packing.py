"""Sequence packing: several samples per row that cannot see each other.

A packed row carries per-token ``position_ids`` that restart at 0 for each
sample and ``sequence_ids`` (1, 2, ... per sample, 0 for padding). The model
gets a block-diagonal causal 4D mask built from ``sequence_ids``; transformers
passes a 4D mask through unchanged to both ``sdpa`` and ``eager``, so packing
does not depend on its own packed-sequence detection (which only runs without
a padding mask).
"""

from __future__ import annotations

import torch

from mpm_framework.contracts.prompt import IGNORE_INDEX, PromptEncoding
from mpm_framework.errors import DataError

PACK_KEYS = ("position_ids", "sequence_ids")


def pack_encodings(encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
    """Pack consecutive samples into rows of at most ``max_length`` tokens, in
    data order: the trainer stacks the batch's images in sample order, so the
    image slots of the packed rows must come in that order too (first-fit would
    reorder samples and put images in other samples' slots). A sample longer
    than ``max_length`` gets a row of its own (truncation is the data pipeline's
    decision, not packing's)."""
    if max_length <= 0:
        raise DataError(f"packing needs a positive max_length, got {max_length}")
    rows: list[list[PromptEncoding]] = []
    width = 0
    for enc in encodings:
        if any(key in enc.extra for key in PACK_KEYS):
            raise DataError("an encoding is already packed; pack raw encodings only")
        if rows and width + len(enc) <= max_length:
            rows[-1].append(enc)
            width += len(enc)
        else:
            rows.append([enc])
            width = len(enc)
    return [_merge(row) for row in rows]


def _merge(samples: list[PromptEncoding]) -> PromptEncoding:
    ids: list[int] = []
    labels: list[int] = []
    image_mask: list[bool] = []
    positions: list[int] = []
    sequence: list[int] = []
    for k, enc in enumerate(samples, start=1):
        ids += enc.input_ids
        # labels[t] is predicted at t-1: a sample's first token must not be
        # predicted from the previous sample's last one.
        labels += [IGNORE_INDEX, *enc.labels[1:]]
        image_mask += enc.image_mask
        positions += range(len(enc))
        sequence += [k] * len(enc)
    return PromptEncoding(ids, labels, image_mask, {"position_ids": positions, "sequence_ids": sequence})


def block_causal_mask(sequence_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) sequence ids -> (B, 1, T, T) additive mask: causal within a sample,
    nothing across samples; a padding row sees only itself (no empty softmax)."""
    T = sequence_ids.shape[1]
    same = sequence_ids[:, :, None] == sequence_ids[:, None, :]
    causal = torch.ones(T, T, dtype=torch.bool, device=sequence_ids.device).tril()
    allowed = same & causal & (sequence_ids[:, None, :] > 0)
    allowed |= torch.eye(T, dtype=torch.bool, device=sequence_ids.device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=sequence_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
