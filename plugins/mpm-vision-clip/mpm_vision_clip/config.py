"""Configs of the CLIP and SigLIP vision towers (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpm_framework.config.choices import Dtype, Quantize


@dataclass
class TowerTinyConfig:
    """Sizes of a randomly initialised tower, used when ``path`` is empty
    (tests and the toy world)."""

    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 32
    intermediate_size: int = 64
    num_layers: int = 3
    num_heads: int = 4
    seed: int = 0


@dataclass
class ClipVisionConfig:
    """``model.vision`` for ``clip``: ``CLIPVisionModel`` from a local directory.

    ``path`` holds a CLIP checkpoint saved by transformers (a full ``CLIPModel``
    such as ``openai/clip-vit-large-patch14-336`` or a ``CLIPVisionModel``) and
    its ``preprocessor_config.json``; empty builds a random tower of the ``tiny``
    sizes. ``feature_layer`` indexes the hidden states as LLaVA does (0: the
    embeddings, -1: the last layer, -2: the penultimate, LLaVA's choice);
    layers past it are dropped (``prune_layers``) as they never influence the
    output. ``keep_cls`` keeps the CLS token in front of the patch tokens
    (LLaVA's ``cls_patch``; the default drops it, LLaVA's ``patch``).
    ``pad_to_square`` pads images to a square of the mean colour before
    preprocessing (LLaVA-1.5's ``image_aspect_ratio: pad``).

    Recommended trainable sets: align: the connector only; instruct: the
    connector (+ the LLM); ``vision.encoder`` only when fine-tuning the tower.
    """

    name: str = "clip"
    path: str = ""
    feature_layer: int = -2
    keep_cls: bool = False
    pad_to_square: bool = False
    prune_layers: bool = True
    dtype: Dtype = "fp32"  # fp32 | bf16 | fp16
    quantize: Quantize = "none"  # none | int8: int8 linear layers for inference (CPU, fp32; mpm_framework.quantize)
    attn_implementation: str = "sdpa"  # sdpa | eager
    tiny: TowerTinyConfig = field(default_factory=TowerTinyConfig)


@dataclass
class SiglipVisionConfig(ClipVisionConfig):
    """``model.vision`` for ``siglip``: ``SiglipVisionModel`` from a local
    directory (e.g. ``google/siglip-so400m-patch14-384``). SigLIP has no CLS
    token, so ``keep_cls`` must stay false; its attention-pooling head and final
    LayerNorm are not used (features come from ``feature_layer``)."""

    name: str = "siglip"
