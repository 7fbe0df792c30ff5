"""The BEiT-3 multiway transformer.

Module and parameter names follow Microsoft's checkpoints (torchscale's
``BEiT3``), so ``state_dict()`` keys are the checkpoint keys without the
``beit3.`` prefix and no renaming table is needed.

Routing: the first ``split`` tokens of a sequence take the vision expert (A), the
rest the language expert (B). Unlike torchscale, which stores the split position
as mutable state on every multiway module, the split is passed down explicitly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from mpm_framework.errors import MPMError

from .config import Beit3Arch

ALL_VISION = -1  # torchscale's split position for "every token takes the vision expert"


def vision_count(split: int, seq_len: int) -> int:
    """How many leading tokens take the vision expert (A) under torchscale's
    convention: ``-1`` all of them, ``0`` none, ``k`` the first ``k``."""
    if split == ALL_VISION:
        return seq_len
    if split < 0:
        raise MPMError(f"beit3 multiway split position must be -1 (all vision) or >= 0, got {split}")
    return min(split, seq_len)


class Multiway(nn.Module):
    """Two copies of a token-wise module: ``A`` for tokens before ``split``, ``B``
    after; ``split == -1`` sends every token to ``A`` (torchscale)."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.A, self.B = a, b

    def forward(self, x: torch.Tensor, split: int) -> torch.Tensor:
        n_a = vision_count(split, x.shape[1])
        if n_a == x.shape[1]:
            return self.A(x)
        if n_a == 0:
            return self.B(x)
        return torch.cat([self.A(x[:, :n_a]), self.B(x[:, n_a:])], dim=1)


def _layer_norm(arch: Beit3Arch, width: int | None = None) -> nn.LayerNorm:
    return nn.LayerNorm(width or arch.hidden_size, eps=arch.layernorm_eps)


class FeedForward(nn.Module):
    """fc1 -> exact GELU (in float32) -> sub-LayerNorm -> fc2."""

    def __init__(self, arch: Beit3Arch) -> None:
        super().__init__()
        self.fc1 = nn.Linear(arch.hidden_size, arch.ffn_size)
        self.fc2 = nn.Linear(arch.ffn_size, arch.hidden_size)
        self.ffn_layernorm = _layer_norm(arch, arch.ffn_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = F.gelu(h.float()).type_as(h)
        return self.fc2(self.ffn_layernorm(h))


class MultiwayAttention(nn.Module):
    """Self-attention whose projections and sub-LayerNorm are multiway."""

    def __init__(self, arch: Beit3Arch, implementation: str = "sdpa") -> None:
        super().__init__()
        if implementation not in ("sdpa", "eager"):
            raise MPMError(f"beit3 attention must be 'sdpa' or 'eager', not {implementation!r}")
        self.num_heads, self.head_dim = arch.num_heads, arch.head_dim
        self.implementation = implementation
        d = arch.hidden_size
        self.q_proj = Multiway(nn.Linear(d, d), nn.Linear(d, d))
        self.k_proj = Multiway(nn.Linear(d, d), nn.Linear(d, d))
        self.v_proj = Multiway(nn.Linear(d, d), nn.Linear(d, d))
        self.out_proj = Multiway(nn.Linear(d, d), nn.Linear(d, d))
        self.inner_attn_ln = Multiway(_layer_norm(arch), _layer_norm(arch))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, split: int, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = (self._heads(p(x, split)) for p in (self.q_proj, self.k_proj, self.v_proj))
        # (B, 1, 1, S): True where a key may be attended to
        keep = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        if self.implementation == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        else:  # the reference computation: scaled q, softmax in float32
            scores = (q * self.head_dim**-0.5) @ k.transpose(-1, -2)
            if keep is not None:
                scores = scores.masked_fill(~keep, float("-inf"))
            out = F.softmax(scores, dim=-1, dtype=torch.float32).type_as(scores) @ v
        out = out.transpose(1, 2).reshape(x.shape)
        return self.out_proj(self.inner_attn_ln(out, split), split)


class EncoderLayer(nn.Module):
    """Pre-norm block: x += attn(ln(x)); x += ffn(ln(x)), every part multiway."""

    def __init__(self, arch: Beit3Arch, attention: str = "sdpa") -> None:
        super().__init__()
        self.self_attn = MultiwayAttention(arch, attention)
        self.self_attn_layer_norm = Multiway(_layer_norm(arch), _layer_norm(arch))
        self.ffn = Multiway(FeedForward(arch), FeedForward(arch))
        self.final_layer_norm = Multiway(_layer_norm(arch), _layer_norm(arch))

    def forward(self, x: torch.Tensor, split: int, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x, split), split, key_padding_mask)
        return x + self.ffn(self.final_layer_norm(x, split), split)


class MultiwayPositions(nn.Module):
    """Learned positions per expert. Each expert's segment counts from row 2
    (fairseq's padding offset), so text positions restart after the image.

    Table sizes follow torchscale's ``BEiT3``: the vision table has
    ``num_image_tokens + 2`` rows (the offset added on top), the text table
    ``max_source_positions`` rows in all (the offset comes out of it, so at
    most ``num_text - 2`` text tokens)."""

    OFFSET = 2

    def __init__(self, num_vision: int, num_text: int, width: int) -> None:
        super().__init__()
        if num_text <= self.OFFSET:
            raise MPMError(f"beit3 max_text_positions must exceed {self.OFFSET} (the padding offset), got {num_text}")
        self.A = nn.Embedding(num_vision + self.OFFSET, width)
        self.B = nn.Embedding(num_text, width)

    def _rows(self, table: nn.Embedding, n: int, expert: str) -> torch.Tensor:
        if n + self.OFFSET > table.num_embeddings:
            limit = table.num_embeddings - self.OFFSET
            raise MPMError(
                f"beit3: {n} tokens for the {expert} expert but its position table holds {limit}"
            )
        return table.weight[self.OFFSET : self.OFFSET + n]

    def forward(self, seq_len: int, split: int) -> torch.Tensor:
        n_a = vision_count(split, seq_len)
        parts = []
        if n_a:
            parts.append(self._rows(self.A, n_a, "vision"))
        if seq_len - n_a:
            parts.append(self._rows(self.B, seq_len - n_a, "language"))
        return torch.cat(parts, dim=0)


class Encoder(nn.Module):
    """Positions -> zero padded rows -> layers -> final multiway LayerNorm."""

    def __init__(self, arch: Beit3Arch, attention: str = "sdpa") -> None:
        super().__init__()
        self.embed_positions = MultiwayPositions(arch.num_image_tokens, arch.max_text_positions, arch.hidden_size)
        self.layers = nn.ModuleList(EncoderLayer(arch, attention) for _ in range(arch.num_layers))
        self.layer_norm = Multiway(_layer_norm(arch), _layer_norm(arch))
        self.gradient_checkpointing = False

    def forward(
        self,
        token_embeddings: torch.Tensor,
        split: int,
        padding_mask: torch.Tensor | None = None,
        return_all_hiddens: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``padding_mask`` (B, T) is True on padded tokens."""
        x = token_embeddings + self.embed_positions(token_embeddings.shape[1], split).to(token_embeddings.dtype)
        if padding_mask is not None:
            x = x * (~padding_mask).unsqueeze(-1).to(x.dtype)
            if not padding_mask.any():
                padding_mask = None  # lets SDPA pick its fused kernels
        states = [x] if return_all_hiddens else []
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, split, padding_mask, use_reentrant=False)
            else:
                x = layer(x, split, padding_mask)
            if return_all_hiddens:
                states.append(x)
        return self.layer_norm(x, split), states


class VisionEmbedding(nn.Module):
    """Conv patch embedding, optional MIM mask token, CLS prepended."""

    def __init__(self, arch: Beit3Arch) -> None:
        super().__init__()
        self.image_size, self.patch_size = arch.image_size, arch.patch_size
        self.num_patches = arch.num_patches
        self.proj = nn.Conv2d(3, arch.hidden_size, arch.patch_size, arch.patch_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, arch.hidden_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.hidden_size))

    def forward(self, pixel_values: torch.Tensor, masked_position: torch.Tensor | None = None) -> torch.Tensor:
        h, w = pixel_values.shape[-2:]
        if (h, w) != (self.image_size, self.image_size):
            raise MPMError(
                f"beit3 expects {self.image_size}x{self.image_size} images, got {h}x{w}; "
                "use the encoder's image_transform()"
            )
        x = self.proj(pixel_values.to(self.proj.weight.dtype)).flatten(2).transpose(1, 2)
        if masked_position is not None:
            w_mask = masked_position.unsqueeze(-1).to(x.dtype)
            x = x * (1 - w_mask) + self.mask_token.to(x.dtype) * w_mask
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)


class Beit3(nn.Module):
    """The BEiT-3 backbone: text embedding, vision embedding, multiway encoder."""

    def __init__(self, arch: Beit3Arch, attention: str = "sdpa") -> None:
        super().__init__()
        self.arch = arch
        self.text_embed = nn.Embedding(arch.vocab_size, arch.hidden_size)
        self.vision_embed = VisionEmbedding(arch)
        self.encoder = Encoder(arch, attention)

    def reset_parameters(self) -> None:
        """unilm/beit3's initialisation: truncated-normal Linear weights (std and
        cut-off 0.02), zero biases, unit LayerNorms; text embedding N(0, d^-0.5);
        position tables N(0, 1) as nn.Embedding; CLS and mask tokens zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.02, b=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.text_embed.weight, std=self.arch.hidden_size**-0.5)
        nn.init.zeros_(self.vision_embed.cls_token)
        nn.init.zeros_(self.vision_embed.mask_token)

    def forward(
        self,
        textual_tokens: torch.Tensor | None = None,
        visual_tokens: torch.Tensor | None = None,
        text_padding_position: torch.Tensor | None = None,
        vision_masked_position: torch.Tensor | None = None,
        return_all_hiddens: bool = False,
    ) -> dict[str, object]:
        """Image only, text only, or image then text (the reference signature).

        ``text_padding_position`` (B, T_text) is True on padded text tokens.
        Returns ``encoder_out`` (B, T, D), ``multiway_split_position`` (number of
        vision-expert tokens) and, if asked, ``encoder_states``."""
        if textual_tokens is None and visual_tokens is None:
            raise MPMError("beit3 needs textual_tokens, visual_tokens or both")
        padding = None
        if textual_tokens is None:
            x = self.vision_embed(visual_tokens, vision_masked_position)
            split = ALL_VISION
        elif visual_tokens is None:
            x = self.text_embed(textual_tokens)
            split, padding = 0, text_padding_position
        else:
            image = self.vision_embed(visual_tokens, vision_masked_position)
            split = image.shape[1]
            x = torch.cat([image, self.text_embed(textual_tokens).to(image.dtype)], dim=1)
            if text_padding_position is not None:
                image_pad = text_padding_position.new_zeros(image.shape[:2])
                padding = torch.cat([image_pad, text_padding_position], dim=1)
        if padding is not None:
            padding = padding.bool()
        out, states = self.encoder(x, split, padding, return_all_hiddens)
        return {"encoder_out": out, "multiway_split_position": split, "encoder_states": states}
