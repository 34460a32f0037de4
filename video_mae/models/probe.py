"""Frozen-encoder probes: measure representation quality without fine-tuning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp, trunc_normal_
from torch import nn

from .vit import VisionTransformer3D

PROBES = ("linear", "attentive")


class AttentivePooler(nn.Module):
    """One learned query cross-attends to all tokens (then an MLP, both residual):
    a pooling that can pick the tokens that matter instead of averaging them."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_eps: float = 1e-6) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"probe.num_heads={num_heads} does not divide the encoder width {dim}")
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.query, std=0.02)
        self.norm_q = nn.LayerNorm(dim, eps=norm_eps)
        self.norm_kv = nn.LayerNorm(dim, eps=norm_eps)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, N, D] -> [B, D]."""
        batch, count, dim = tokens.shape
        head_dim = dim // self.num_heads
        query = self.query.expand(batch, -1, -1)
        q = self.q(self.norm_q(query)).reshape(batch, 1, self.num_heads, head_dim).transpose(1, 2)
        kv = self.kv(self.norm_kv(tokens)).reshape(batch, count, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, kv[0], kv[1]).transpose(1, 2).reshape(batch, 1, dim)
        x = query + self.proj(attended)
        x = x + self.mlp(self.norm_mlp(x))
        return x[:, 0]


class ProbeClassifier(nn.Module):
    """A frozen encoder (final norm on, no gradients, always in eval mode) and a
    trained head:

    * ``linear``: mean of the tokens, BatchNorm without affine parameters, linear
      layer (the MAE linear-probe protocol);
    * ``attentive``: :class:`AttentivePooler`, LayerNorm, linear layer.
    """

    def __init__(self, encoder: VisionTransformer3D, num_classes: int, kind: str = "linear", num_heads: int = 8) -> None:
        super().__init__()
        if kind not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(PROBES)}, got {kind!r}")
        if not isinstance(encoder.norm, nn.LayerNorm):
            raise ValueError("a probe reads normalised tokens: build the encoder with final_norm=True")
        self.encoder = encoder.requires_grad_(False)
        self.kind = kind
        self.num_classes = num_classes
        dim = encoder.embed_dim
        if kind == "linear":
            self.pool = None
            self.head_norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        else:
            self.pool = AttentivePooler(dim, num_heads, norm_eps=encoder.norm_eps)
            self.head_norm = nn.LayerNorm(dim, eps=encoder.norm_eps)
        self.head = nn.Linear(dim, num_classes)
        trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def train(self, mode: bool = True) -> ProbeClassifier:
        super().train(mode)
        self.encoder.eval()  # frozen: no drop path, no dropout
        return self

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            tokens = self.encoder.forward_features(video)
        pooled = tokens.mean(dim=1) if self.pool is None else self.pool(tokens)
        return self.head_norm(pooled)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(video))
