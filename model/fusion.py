"""Dual visual encoder fusion (paper eq. 4): CLIP tokens attend to ConvNeXt tokens.

``E' = X_L + CrossAttn(Q = X_L, K = V = X_H)`` and ``E = MLP(E') + E'``. The attention output
projection and the MLP's last layer start at zero, so an untrained fusion returns the CLIP
features unchanged and a pretrained LLaVA keeps working on the first step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MLP_EXPANSION = 4
"""Hidden width of the fusion MLP, in multiples of the CLIP width."""


class DualEncoderFusion(nn.Module):
    """Cross-attention of low-resolution CLIP tokens (queries) to high-resolution ConvNeXt tokens.

    Args:
        clip_dim: width of the CLIP tokens (CLIP-L: 1024).
        convnext_dim: channels of the last ConvNeXt stage (ConvNeXt-L: 1536).
        heads: attention heads (``clip_dim`` must divide by it).
    """

    def __init__(self, clip_dim: int, convnext_dim: int, heads: int) -> None:
        super().__init__()
        if clip_dim % heads:
            raise ValueError(f"fusion: clip_dim {clip_dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.norm_q = nn.LayerNorm(clip_dim)
        self.norm_kv = nn.LayerNorm(convnext_dim)
        self.q = nn.Linear(clip_dim, clip_dim)
        self.kv = nn.Linear(convnext_dim, 2 * clip_dim)
        self.out = nn.Linear(clip_dim, clip_dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(clip_dim),
            nn.Linear(clip_dim, MLP_EXPANSION * clip_dim),
            nn.GELU(),
            nn.Linear(MLP_EXPANSION * clip_dim, clip_dim),
        )
        for layer in (self.out, self.mlp[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Fuse.

        Args:
            low: ``(N, Lq, clip_dim)`` CLIP tokens of N image patches.
            high: ``(N, Lk, convnext_dim)`` ConvNeXt tokens of each patch's image.

        Returns:
            ``(N, Lq, clip_dim)`` fused tokens, dtype of ``low``.
        """
        n, lq, dim = low.shape
        head_dim = dim // self.heads
        q = self.q(self.norm_q(low)).view(n, lq, self.heads, head_dim).transpose(1, 2)
        k, v = self.kv(self.norm_kv(high.to(low.dtype))).chunk(2, dim=-1)
        k = k.reshape(n, -1, self.heads, head_dim).transpose(1, 2)
        v = v.reshape(n, -1, self.heads, head_dim).transpose(1, 2)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, lq, dim)
        fused = low + self.out(attended)
        return fused + self.mlp(fused)
