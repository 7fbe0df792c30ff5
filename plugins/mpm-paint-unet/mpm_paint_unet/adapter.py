"""The bridge from pivot-LLM hidden states to the UNet's cross-attention width.

VisCPM-Paint maps CPM-Bee's 4096-wide final hidden states with a bias-free
Linear to 1024, applies dropout and a LayerNorm: the LayerNorm puts the LLM's
(unnormalised, large) activations on the scale the UNet's cross-attention was
trained on with CLIP text features.

Optionally (``standardize``) each LLM feature is first centred and scaled by
running statistics over real (unpadded) tokens. Small LMs put most of their
final-layer norm into a few directions shared by every token (cosine 0.999
between "a red circle" and "a blue circle" at the colour word for the toy
pivot); the LayerNorm after the projection cannot remove a shared direction,
so prompts look alike to the UNet until the Linear has slowly learnt to ignore
it. The statistics are buffers: saved with the adapter, frozen in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn


class LLMAdapter(nn.Module):
    def __init__(
        self, llm_dim: int, cross_attention_dim: int, dropout: float = 0.1, standardize: bool = False
    ) -> None:
        super().__init__()
        self.llm_dim, self.cross_attention_dim = llm_dim, cross_attention_dim
        self.standardize = standardize
        if standardize:
            self.register_buffer("input_mean", torch.zeros(llm_dim))
            self.register_buffer("input_var", torch.ones(llm_dim))
            self.register_buffer("input_count", torch.zeros((), dtype=torch.long))
        self.proj = nn.Linear(llm_dim, cross_attention_dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(cross_attention_dim)

    @torch.no_grad()
    def _update_statistics(self, tokens: torch.Tensor) -> None:
        """Cumulative mean/variance over every real token seen in training (the
        pivot is frozen, so its statistics do not drift)."""
        n = tokens.shape[0]
        if n == 0:
            return
        tokens = tokens.float()
        total = int(self.input_count) + n
        batch_mean = tokens.mean(0)
        delta = batch_mean - self.input_mean
        new_mean = self.input_mean + delta * (n / total)
        m_old = self.input_var * int(self.input_count)
        m_new = tokens.var(0, unbiased=False) * n
        new_var = (m_old + m_new + delta.pow(2) * int(self.input_count) * n / total) / total
        self.input_mean.copy_(new_mean)
        self.input_var.copy_(new_var)
        self.input_count.fill_(total)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.standardize:
            if self.training:
                real = hidden_states if mask is None else hidden_states[mask.bool()]
                self._update_statistics(real.reshape(-1, self.llm_dim))
            scale = (self.input_var + 1e-5).rsqrt()
            hidden_states = ((hidden_states.float() - self.input_mean) * scale).to(hidden_states.dtype)
        return self.norm(self.dropout(self.proj(hidden_states)))


class PromptPool(nn.Module):
    """Attention pooling of the adapted prompt states into one vector per head
    (the pooled-prompt input of a UNet with a projection class embedding).

    The queries start at zero, i.e. as a plain masked mean; each head learns
    which tokens matter (a colour word, a position phrase) far sooner than
    the UNet's cross-attention does from scratch."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.dim, self.heads = dim, heads
        self.queries = nn.Parameter(torch.zeros(heads, dim))

    @property
    def output_dim(self) -> int:
        return self.dim * self.heads

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("btd,hd->bht", states, self.queries.to(states.dtype)) / self.dim**0.5
        scores = scores.masked_fill(~mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        weights = scores.softmax(-1)
        return torch.einsum("bht,btd->bhd", weights, states).flatten(1)
