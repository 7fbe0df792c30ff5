"""The bridge from pivot-LLM hidden states to the UNet's cross-attention width.

VisCPM-Paint maps CPM-Bee's 4096-wide final hidden states with a bias-free
Linear to 1024, applies dropout and a LayerNorm: the LayerNorm puts the LLM's
(unnormalised, large) activations on the scale the UNet's cross-attention was
trained on with CLIP text features.
"""

from __future__ import annotations

import torch
from torch import nn


class LLMAdapter(nn.Module):
    def __init__(self, llm_dim: int, cross_attention_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.llm_dim, self.cross_attention_dim = llm_dim, cross_attention_dim
        self.proj = nn.Linear(llm_dim, cross_attention_dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dropout(self.proj(hidden_states)))
