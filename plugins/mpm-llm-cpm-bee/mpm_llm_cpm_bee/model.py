"""The CPM-Bee transformer in plain PyTorch, module names = the official checkpoint keys.

What it computes (facts from the official pure-PyTorch implementation; the
code is ours): pre-norm RMSNorm blocks with residual ``(h + x) / 1.05``;
bias-free linears whose output is divided by ``sqrt(d_in)``; attention scores
``q k^T / sqrt(d_head)`` plus one position-bias table shared by all layers,
indexed by a bucket that is the log-bucketed token distance inside a segment
and the tree relation of the two segments across segments; a gated-GELU FFN;
embeddings divided by ``sqrt(d)`` and rotated by the token's sub index; tied
output embeddings plus logits over an extension table of (id, sub) pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .config import CPMBeeArch

LayerCache = tuple[torch.Tensor, torch.Tensor] | None


class RMSNorm(nn.Module):
    """Weight-only RMS norm; the statistics are taken in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


class ScaledLinear(nn.Module):
    """Bias-free linear whose output is divided by sqrt(d_in) (weights live at unit scale)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.dim_in = dim_in
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight) / math.sqrt(self.dim_in)

    def to_linear(self) -> nn.Linear:
        """The plain ``nn.Linear`` this layer computes (scale folded into the weight):
        what int8 quantisation (``mpm_framework.quantize``) replaces."""
        linear = nn.Linear(self.dim_in, self.weight.shape[0], bias=False, device=self.weight.device,
                           dtype=self.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.weight / math.sqrt(self.dim_in))
        return linear


def rotate_by_sub(x: torch.Tensor, sub: torch.Tensor, distance_scale: float = 16.0,
                  base: float = 10000.0) -> torch.Tensor:
    """Rotary rotation of whole embeddings by ``sub * distance_scale`` (sub 0 = identity).

    The angle is computed in float32 (the official code does it in the model
    dtype; in fp32 the two agree)."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim))
    freqs = (sub.to(torch.float32) * distance_scale)[..., None] * inv_freq
    angle = torch.cat([freqs, freqs], dim=-1)
    half = dim // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * angle.cos().to(x.dtype) + rotated * angle.sin().to(x.dtype)


class EmbeddingExt(nn.Module):
    def __init__(self, vocab_size: int, dim: int, distance_scale: float = 16.0) -> None:
        super().__init__()
        self.dim = dim
        self.distance_scale = distance_scale
        self.weight = nn.Parameter(torch.empty(vocab_size, dim))

    def plain(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of sub-0 tokens (what image slots and most text use)."""
        return F.embedding(ids, self.weight) / math.sqrt(self.dim)

    def apply_sub(self, embeds: torch.Tensor, sub: torch.Tensor | None) -> torch.Tensor:
        if sub is None or not bool((sub != 0).any()):
            return embeds
        return rotate_by_sub(embeds, sub, self.distance_scale)

    def forward(self, ids: torch.Tensor, sub: torch.Tensor | None = None) -> torch.Tensor:
        return self.apply_sub(self.plain(ids), sub)

    def projection(self, x: torch.Tensor, ext_table: torch.Tensor | None = None) -> torch.Tensor:
        logits = F.linear(x / math.sqrt(self.dim), self.weight)
        if ext_table is not None and ext_table.shape[0] > 0:
            logits = torch.cat([logits, F.linear(x, ext_table)], dim=-1)
        return logits


def position_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional log buckets of ``key_pos - query_pos``: half the buckets per
    direction (keys after the query take the upper half), exact below a quarter,
    logarithmic up to ``max_distance``."""
    half = num_buckets // 2
    bucket = (relative > 0).to(torch.long) * half
    distance = relative.abs()
    max_exact = half // 2
    safe = distance.clamp(min=1).to(torch.float32)
    large = max_exact + (torch.log(safe / max_exact) / math.log(max_distance / max_exact)
                         * (half - max_exact)).to(torch.long)
    large = large.clamp(max=half - 1)
    return bucket + torch.where(distance < max_exact, distance.to(torch.long), large)


class BucketPositionBias(nn.Module):
    def __init__(self, num_heads: int, num_buckets: int, num_segment_buckets: int, max_distance: int) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = nn.Parameter(torch.empty(num_buckets + num_segment_buckets, num_heads))

    def buckets(self, query_pos: torch.Tensor, key_pos: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        """Row of the bias table for each (query, key): the token-distance bucket
        when ``relation`` is 0 (same segment), else ``num_buckets + relation - 1``."""
        inner = position_bucket(key_pos[:, None, :] - query_pos[:, :, None], self.num_buckets, self.max_distance)
        return torch.where(relation == 0, inner, relation.to(torch.long) - 1 + self.num_buckets)

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        index = self.buckets(query_pos, key_pos, relation)
        return F.embedding(index, self.relative_attention_bias).permute(0, 3, 1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dim_head: int, backend: str = "sdpa") -> None:
        super().__init__()
        self.num_heads, self.dim_head, self.backend = num_heads, dim_head, backend
        inner = num_heads * dim_head
        self.project_q = ScaledLinear(dim, inner)
        self.project_k = ScaledLinear(dim, inner)
        self.project_v = ScaledLinear(dim, inner)
        self.attention_out = ScaledLinear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.dim_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor,
                past: LayerCache = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        q = self._heads(self.project_q(x))
        k = self._heads(self.project_k(x))
        v = self._heads(self.project_v(x))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        scale = 1.0 / math.sqrt(self.dim_head)
        if self.backend == "eager":
            scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale + bias.float()
            scores = scores.masked_fill(~mask[:, None], torch.finfo(torch.float32).min)
            out = torch.matmul(scores.softmax(-1).to(v.dtype), v)
        else:
            float_mask = bias.to(q.dtype).masked_fill(~mask[:, None], float("-inf"))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask, scale=scale)
        b, _, t, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t, self.num_heads * self.dim_head)
        return self.attention_out(out), (k, v)


class SelfAttentionBlock(nn.Module):
    def __init__(self, arch: CPMBeeArch, backend: str) -> None:
        super().__init__()
        self.layernorm_before_attention = RMSNorm(arch.dim_model, arch.eps)
        self.self_attention = Attention(arch.dim_model, arch.num_heads, arch.dim_head, backend)

    def forward(self, h, mask, bias, past=None):
        out, kv = self.self_attention(self.layernorm_before_attention(h), mask, bias, past)
        return (h + out) / 1.05, kv


class GatedGELU(nn.Module):
    def __init__(self, dim: int, dim_ff: int) -> None:
        super().__init__()
        self.w_0 = ScaledLinear(dim, dim_ff)
        self.w_1 = ScaledLinear(dim, dim_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.w_0(x)) * self.w_1(x)


class FeedForward(nn.Module):
    def __init__(self, dim: int, dim_ff: int) -> None:
        super().__init__()
        self.w_in = GatedGELU(dim, dim_ff)
        self.w_out = ScaledLinear(dim_ff, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_out(self.w_in(x))


class FFNBlock(nn.Module):
    def __init__(self, arch: CPMBeeArch) -> None:
        super().__init__()
        self.layernorm_before_ffn = RMSNorm(arch.dim_model, arch.eps)
        self.ffn = FeedForward(arch.dim_model, arch.dim_ff)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h + self.ffn(self.layernorm_before_ffn(h))) / 1.05


class TransformerBlock(nn.Module):
    """Attention then FFN; either may be pruned away (``mask_modules``)."""

    def __init__(self, arch: CPMBeeArch, layer: int, backend: str) -> None:
        super().__init__()
        if arch.has_attention(layer):
            self.self_att = SelfAttentionBlock(arch, backend)
        if arch.has_ffn(layer):
            self.ffn = FFNBlock(arch)

    def forward(self, h, mask, bias, past=None):
        kv = None
        if hasattr(self, "self_att"):
            h, kv = self.self_att(h, mask, bias, past)
        if hasattr(self, "ffn"):
            h = self.ffn(h)
        return h, kv


class Encoder(nn.Module):
    def __init__(self, arch: CPMBeeArch, backend: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(arch, i, backend) for i in range(arch.num_layers))
        self.output_layernorm = RMSNorm(arch.dim_model, arch.eps)


@dataclass
class TokenFields:
    """Per-token fields that attention needs, for the queries or for the keys."""

    position: torch.Tensor  # (B, T) long
    context: torch.Tensor  # (B, T) bool
    segment: torch.Tensor  # (B, T) long
    num_segments: torch.Tensor  # (B, T) long; 0 marks padding
    segment_rel_offset: torch.Tensor  # (B, T) long
    sample_ids: torch.Tensor  # (B, T) long
    span: torch.Tensor  # (B, T) long

    def cat(self, other: TokenFields) -> TokenFields:
        return TokenFields(*(torch.cat([a, b], dim=1) for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return (self.position, self.context, self.segment, self.num_segments, self.segment_rel_offset,
                self.sample_ids, self.span)

    def index_select(self, index: torch.Tensor) -> TokenFields:
        return TokenFields(*(t.index_select(0, index) for t in self.astuple()))


def attention_layout(q: TokenFields, k: TokenFields, segment_rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, relation) of shape (B, Tq, Tk).

    A query sees a key when the key is not padding, belongs to the same span and
    (for sample 0) any sample or (for in-context sample i) sample i, and the key
    is context or the query is an answer token at a later-or-equal position
    (prefix-LM). The relation is the segment-tree bucket from ``segment_rel``
    (0 inside one segment) or 1 across samples or spans."""
    same_sample = q.sample_ids[:, :, None] == k.sample_ids[:, None, :]
    same_span = q.span[:, :, None] == k.span[:, None, :]
    together = same_sample & same_span
    index = (q.segment[:, :, None] * q.num_segments[:, :, None] + k.segment[:, None, :]
             + q.segment_rel_offset[:, :, None])
    index = index.masked_fill(~together, 0).clamp(0, segment_rel.shape[1] - 1)
    b, tq, tk = index.shape
    relation = torch.gather(segment_rel.long(), 1, index.view(b, tq * tk)).view(b, tq, tk)
    relation = relation.masked_fill(~together, 1)

    causal = k.position[:, None, :] <= q.position[:, :, None]
    mask = k.context[:, None, :] | (~q.context[:, :, None] & causal)
    mask = mask & ((q.sample_ids[:, :, None] == 0) | same_sample) & same_span
    mask = mask & (k.num_segments != 0)[:, None, :]
    # Rows with no visible key (padding queries) see everything: their output is
    # never used, and an all-masked row would turn into NaN.
    return mask | ~mask.any(-1, keepdim=True), relation


class CPMBeeModel(nn.Module):
    """The official ``CPMBeeTorch`` layout; ``run`` runs the encoder on given
    input embeddings (image slots already filled). Parameter names are the
    official checkpoint keys."""

    def __init__(self, arch: CPMBeeArch, backend: str = "sdpa") -> None:
        super().__init__()
        self.arch = arch
        self.input_embedding = EmbeddingExt(arch.vocab_size, arch.dim_model)
        self.position_bias = BucketPositionBias(arch.num_heads, arch.position_bias_num_buckets,
                                                arch.position_bias_num_segment_buckets,
                                                arch.position_bias_max_distance)
        self.encoder = Encoder(arch, backend)
        self.gradient_checkpointing = False

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """Random init as the official model: unit-scale linears and position
        bias (the 1/sqrt(d_in) is in the forward), embeddings with std 0.02."""
        generator = torch.Generator().manual_seed(seed)
        for name, param in self.named_parameters():
            if name.endswith("layernorm.weight") or "layernorm_before" in name:
                param.fill_(1.0)
            else:
                std = 0.02 if name == "input_embedding.weight" else 1.0
                param.copy_(torch.randn(param.shape, generator=generator) * std)

    def run(
        self,
        hidden: torch.Tensor,
        fields: TokenFields,
        segment_rel: torch.Tensor,
        past: list[LayerCache] | None = None,
        past_fields: TokenFields | None = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, list[LayerCache] | None, tuple[torch.Tensor, ...] | None]:
        keys = fields if past_fields is None else past_fields.cat(fields)
        mask, relation = attention_layout(fields, keys, segment_rel)
        bias = self.position_bias(fields.position, keys.position, relation)
        states: list[torch.Tensor] = [hidden] if output_hidden_states else []
        caches: list[LayerCache] = []
        for i, layer in enumerate(self.encoder.layers):
            layer_past = past[i] if past is not None else None
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden, kv = checkpoint(layer, hidden, mask, bias, layer_past, use_reentrant=False)
            else:
                hidden, kv = layer(hidden, mask, bias, layer_past)
            caches.append(kv)
            if output_hidden_states:
                states.append(hidden)
        hidden = self.encoder.output_layernorm(hidden)
        if output_hidden_states:
            states[-1] = hidden  # the last entry is the normed output (as Hugging Face models)
        return hidden, (caches if use_cache else None), (tuple(states) if output_hidden_states else None)


def expected_keys(arch: CPMBeeArch) -> list[str]:
    """Every key of an official checkpoint of this architecture."""
    keys = ["input_embedding.weight", "position_bias.relative_attention_bias"]
    for i in range(arch.num_layers):
        if arch.has_attention(i):
            prefix = f"encoder.layers.{i}.self_att."
            keys.append(prefix + "layernorm_before_attention.weight")
            keys += [f"{prefix}self_attention.{n}.weight"
                     for n in ("project_q", "project_k", "project_v", "attention_out")]
        if arch.has_ffn(i):
            prefix = f"encoder.layers.{i}.ffn."
            keys += [prefix + "layernorm_before_ffn.weight", prefix + "ffn.w_in.w_0.weight",
                     prefix + "ffn.w_in.w_1.weight", prefix + "ffn.w_out.weight"]
    keys.append("encoder.output_layernorm.weight")
    return keys


def describe(arch: CPMBeeArch) -> dict[str, Any]:
    return {"layers": arch.num_layers, "attention_layers": len(arch.attention_layers),
            "ffn_layers": len(arch.ffn_layers), "dim": arch.dim_model, "heads": arch.num_heads}
