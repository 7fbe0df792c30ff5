"""Sequence packing: several samples per row that cannot see each other.

``PivotLLM.pack_sequences`` belongs to each LLM (only the model knows how it keeps
samples apart: CPM-Bee uses its ``span`` ids, a Hugging Face model a 4-D mask
and restarted positions). This module is the one implementation of the common
part, so a plugin's ``pack`` is a call:

* :func:`pack_in_order` merges consecutive encodings into rows, *keeping their
  order* (the trainer stacks images in sample order, and image slots are filled
  in row-major order; first-fit would put images in other samples' slots),
  adding ``extra["position_ids"]`` (restarting at 0 in each sample) and
  ``extra["sequence_ids"]`` (1, 2, ... per sample in the row; 0 is padding);
* :func:`block_causal_mask` turns batched ``sequence_ids`` into the (B, T, T)
  boolean mask "query may attend to key", :func:`block_causal_bias` into the
  (B, 1, T, T) additive mask transformers takes.

The first label of every packed sample is ignored, so the loss of a packed row
equals the token-weighted loss of its samples computed one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..contracts.prompt import IGNORE_INDEX, PromptEncoding
from ..errors import DataError

if TYPE_CHECKING:
    import torch

PACK_KEYS = ("position_ids", "sequence_ids")


def pack_in_order(encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
    """Pack consecutive samples into rows of at most ``max_length`` tokens, in
    data order. A sample longer than ``max_length`` gets a row of its own
    (truncation is the data pipeline's decision, not packing's)."""
    if max_length <= 0:
        raise DataError(f"packing needs a positive max_length, got {max_length}")
    rows: list[list[PromptEncoding]] = []
    width = 0
    for enc in encodings:
        if any(key in enc.extra for key in PACK_KEYS):
            raise DataError("an encoding is already packed; pack raw encodings only")
        if enc.extra:
            raise DataError("pack_in_order handles encodings without model-specific extra fields; "
                            f"got {sorted(enc.extra)} (the LLM's own pack must merge them)")
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


def block_causal_mask(sequence_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) sequence ids (0 = padding) -> (B, T, T) bool, True where query t may
    attend to key s: same sample and s <= t. Padding rows attend to themselves
    only, so softmax stays finite."""
    import torch

    T = sequence_ids.shape[-1]
    same = sequence_ids.unsqueeze(-1) == sequence_ids.unsqueeze(-2)
    causal = torch.ones(T, T, dtype=torch.bool, device=sequence_ids.device).tril()
    mask = same & causal & (sequence_ids != 0).unsqueeze(-1)
    return mask | torch.eye(T, dtype=torch.bool, device=sequence_ids.device)


def block_causal_bias(sequence_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`block_causal_mask` as the (B, 1, T, T) additive mask (0 where
    allowed, the dtype's minimum elsewhere) a transformers model takes."""
    import torch

    allowed = block_causal_mask(sequence_ids)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=sequence_ids.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
