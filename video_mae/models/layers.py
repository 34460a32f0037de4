"""Transformer building blocks shared by the encoder and the decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.layers import DropPath, Mlp
from torch import nn

# On the CPU, the flash-attention kernel's backward in bf16 is slow on short sequences:
# fwd+bwd, batch 4 x 6 heads of 64, 2 cores with AMX: 39 tokens (an MAE encoder's visible
# ones at 112 px) 1.93 ms flash vs 0.46 ms as two matrix products and a softmax; 392 tokens
# (the decoder's) 13.4 vs 11.2; 784 tokens 33 vs 41 (flash wins from there, and in fp32 and
# for forward-only passes at every length). So training steps in bf16/fp16 on the CPU over
# at most this many tokens compute attention explicitly.
CPU_EXPLICIT_ATTENTION_MAX_TOKENS = 512


def _explicit_attention_pays(q: torch.Tensor) -> bool:
    return (
        q.device.type == "cpu"
        and q.requires_grad
        and q.dtype in (torch.bfloat16, torch.float16)
        and q.shape[-2] <= CPU_EXPLICIT_ATTENTION_MAX_TOKENS
    )


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over [B, heads, N, d]: ``F.scaled_dot_product_attention``
    except where :data:`CPU_EXPLICIT_ATTENTION_MAX_TOKENS` says the explicit form is faster
    (the CPU's bf16 softmax accumulates in fp32 as the fused kernels do)."""
    if not _explicit_attention_pays(q):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    weights = scores.softmax(dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


class Attention(nn.Module):
    """Multi-head self-attention over all tokens (joint space-time attention).

    The query and value projections carry biases and the key projection does not,
    as in VideoMAE: one bias-free ``qkv`` matrix plus separate ``q_bias`` and
    ``v_bias`` vectors, which keeps released VideoMAE weights loadable as they are.
    The attention itself runs through ``F.scaled_dot_product_attention`` so that
    PyTorch picks the flash or memory-efficient kernel where the device has one (see
    :func:`attention` for the one case where it does not).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embedding dim {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.register_parameter("q_bias", None)
            self.register_parameter("v_bias", None)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def qkv_bias(self) -> torch.Tensor | None:
        """The bias of the fused projection: [q_bias, 0, v_bias], or None."""
        if self.q_bias is None:
            return None
        return torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = F.linear(x, self.qkv.weight, self.qkv_bias())
        q, k, v = qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)).

    ``layer_scale_init`` (e.g. 0.1) enables per-channel residual scales named
    ``gamma_1`` / ``gamma_2`` as in VideoMAE; None leaves them out.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale_init: float | None = None,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        # round, not int: a ratio like 6144 / 1408 must give back 6144 hidden units.
        self.mlp = Mlp(in_features=dim, hidden_features=round(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        if layer_scale_init is not None:
            self.gamma_1 = nn.Parameter(layer_scale_init * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layer_scale_init * torch.ones(dim))
        else:
            self.gamma_1 = None
            self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """Runs ``blocks`` in order; with ``checkpointing`` in training, each block's
    activations are recomputed in the backward pass instead of kept (memory for time)."""
    use_checkpoint = checkpointing and torch.is_grad_enabled()
    for block in blocks:
        if use_checkpoint:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x


def init_vit_weights(module: nn.Module) -> None:
    """VideoMAE's initialisation: xavier-uniform linear weights, zero biases,
    unit LayerNorms. Apply with ``model.apply(init_vit_weights)``."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
