"""The light MAE decoder: a few transformer blocks and a pixel head."""

from __future__ import annotations

import torch
from torch import nn

from .layers import Block, init_vit_weights, run_blocks


class MAEDecoder(nn.Module):
    """Transformer blocks over the full token sequence (visible + mask tokens),
    then a norm and a linear head applied only to the last ``num_predict`` tokens,
    which are the masked ones."""

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        out_dim: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        layer_scale_init: float | None = None,
        norm_eps: float = 1e-6,
        final_norm_eps: float | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.grad_checkpointing = grad_checkpointing
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                layer_scale_init=layer_scale_init,
                norm_eps=norm_eps,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=final_norm_eps if final_norm_eps is not None else norm_eps)
        self.head = nn.Linear(embed_dim, out_dim)
        self.apply(init_vit_weights)

    def forward(self, x: torch.Tensor, num_predict: int) -> torch.Tensor:
        x = run_blocks(self.blocks, x, self.grad_checkpointing and self.training)
        return self.head(self.norm(x[:, -num_predict:]))
