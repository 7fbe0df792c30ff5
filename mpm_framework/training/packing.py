"""Sequence packing helpers for LLM plugins.

``PivotLLM.pack`` belongs to each LLM (only the model knows how it keeps
samples apart: CPM-Bee uses its ``span`` ids, a Hugging Face model a 4-D mask
and restarted positions). These helpers implement the common part so a plugin's
``pack`` can be three lines:

* :func:`pack_in_order` merges consecutive encodings into rows, *keeping their
  order* (the trainer stacks images in sample order, and image slots are filled
  in row-major order), adding ``extra["position_ids"]`` (restarting at 0 in each
  sample) and ``extra["sample_ids"]`` (1, 2, ... per sample in the row; 0 is
  padding);
* :func:`block_causal_mask` turns batched ``sample_ids`` into the (B, T, T)
  boolean mask "query may attend to key".

The first label of every packed sample is ignored, so the loss of a packed row
equals the token-weighted loss of its samples computed one by one.
"""

from __future__ import annotations

from ..contracts.prompt import IGNORE_INDEX, PromptEncoding


def pack_in_order(encodings: list[PromptEncoding], max_length: int) -> list[PromptEncoding]:
    rows: list[PromptEncoding] = []
    current: list[PromptEncoding] = []
    width = 0
    for enc in encodings:
        if enc.extra and set(enc.extra) - {"position_ids", "sample_ids"}:
            raise ValueError("pack_in_order handles encodings without model-specific extra fields; "
                             f"got {sorted(enc.extra)}")
        if current and width + len(enc) > max_length:
            rows.append(_merge(current))
            current, width = [], 0
        current.append(enc)
        width += len(enc)
    if current:
        rows.append(_merge(current))
    return rows


def _merge(encodings: list[PromptEncoding]) -> PromptEncoding:
    ids: list[int] = []
    labels: list[int] = []
    image_mask: list[bool] = []
    positions: list[int] = []
    samples: list[int] = []
    for k, enc in enumerate(encodings, 1):
        ids += enc.input_ids
        labels += [IGNORE_INDEX, *enc.labels[1:]]  # no prediction across the sample boundary
        image_mask += enc.image_mask
        positions += list(range(len(enc)))
        samples += [k] * len(enc)
    return PromptEncoding(ids, labels, image_mask, {"position_ids": positions, "sample_ids": samples})


def block_causal_mask(sample_ids):
    """(B, T) sample ids (0 = padding) -> (B, T, T) bool, True where query t may
    attend to key s: same sample and s <= t. Padding rows attend to themselves
    only, so softmax stays finite."""
    import torch

    T = sample_ids.shape[-1]
    same = sample_ids.unsqueeze(-1) == sample_ids.unsqueeze(-2)
    causal = torch.ones(T, T, dtype=torch.bool, device=sample_ids.device).tril()
    mask = same & causal & (sample_ids != 0).unsqueeze(-1)
    return mask | torch.eye(T, dtype=torch.bool, device=sample_ids.device)
