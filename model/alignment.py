"""Semantic region alignment (paper eq. 5-7): the ``[OBJ] {class} [SEG]`` span becomes one prompt.

The hidden states of the span are projected to the mask decoder's prompt width (as LISA's
``text_hidden_fcs``), then one query, the projected ``[SEG]`` state plus a learned vector,
attends to the whole span (variable length, eq. 6) and gives a single ``prompt_dim`` vector.
With alignment off, the prompt is the projected ``[SEG]`` state alone (LISA; Table 6 ablation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegProjection(nn.Module):
    """``hidden -> prompt_dim`` MLP applied to LLM hidden states (LISA's text_hidden_fcs).

    Args:
        hidden_size: LLM width (7B: 4096).
        prompt_dim: mask decoder prompt width (SAM: 256).
    """

    def __init__(self, hidden_size: int, prompt_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, prompt_dim))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., hidden_size)`` -> ``(..., prompt_dim)``."""
        return self.net(hidden)


class RegionAlignment(nn.Module):
    """Cross-attention pooling of a projected span to one prompt (eq. 6).

    Args:
        prompt_dim: width of the projected span tokens and of the output (256).
        heads: attention heads (``prompt_dim`` must divide by it).
    """

    def __init__(self, prompt_dim: int, heads: int) -> None:
        super().__init__()
        if prompt_dim % heads:
            raise ValueError(f"alignment: prompt_dim {prompt_dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.query = nn.Parameter(torch.zeros(prompt_dim))
        self.norm = nn.LayerNorm(prompt_dim)
        self.q = nn.Linear(prompt_dim, prompt_dim)
        self.k = nn.Linear(prompt_dim, prompt_dim)
        self.v = nn.Linear(prompt_dim, prompt_dim)
        self.out = nn.Linear(prompt_dim, prompt_dim)

    def forward(self, span: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pool spans.

        Args:
            span: ``(T, S, prompt_dim)`` projected hidden states of T spans, each padded to S
                tokens; the ``[SEG]`` state of span ``t`` is at index ``lengths[t] - 1``.
            lengths: ``(T,)`` long, tokens of each span (>= 1, ``[OBJ]`` and ``[SEG]`` included).

        Returns:
            ``(T, prompt_dim)`` one prompt per span.
        """
        t, s, dim = span.shape
        head_dim = dim // self.heads
        seg = span[torch.arange(t, device=span.device), lengths - 1]
        normed = self.norm(span)
        q = self.q(self.norm(seg) + self.query).view(t, self.heads, 1, head_dim)
        k = self.k(normed).view(t, s, self.heads, head_dim).transpose(1, 2)
        v = self.v(normed).view(t, s, self.heads, head_dim).transpose(1, 2)
        valid = torch.arange(s, device=span.device)[None, :] < lengths[:, None]
        pooled = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        return seg + self.out(pooled.reshape(t, dim))
