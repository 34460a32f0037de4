"""The video encoder: a ViT over tubelet tokens with joint space-time attention."""

from __future__ import annotations

import torch
from torch import nn

from .layers import Block, init_vit_weights, run_blocks
from .patch_embed import PatchEmbed3D
from .pos_embed import resize_pos_embed, sinusoid_table


class VisionTransformer3D(nn.Module):
    """ViT encoder for clips [B, C, T, H, W].

    ``forward_features(x)`` embeds every tubelet, adds the fixed positional table and
    returns the final-norm tokens [B, N, embed_dim]; with ``ids_keep`` it embeds only
    the tubelets listed there (the visible ones during MAE pretraining, so masked
    tubelets cost nothing, not even their embedding) and returns [B, n_kept, embed_dim].
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_scale_init: float | None = None,
        norm_eps: float = 1e-6,
        grad_checkpointing: bool = False,
        final_norm: bool = True,
        pos_embed_grid: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.mlp_ratio = mlp_ratio
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = PatchEmbed3D(img_size, patch_size, num_frames, tubelet_size, in_chans, embed_dim)
        # The fixed table is defined on `pos_embed_grid` (the pretraining grid when a
        # fine-tuned model sees other clip lengths or sizes) and resampled to this
        # model's grid. Not a parameter and not saved: it is a function of the grids.
        source = tuple(pos_embed_grid) if pos_embed_grid is not None else self.patch_embed.grid
        self.pos_embed_grid = source
        table = resize_pos_embed(sinusoid_table(source[0] * source[1] * source[2], embed_dim), source, self.patch_embed.grid)
        self.register_buffer("pos_embed", table[None], persistent=False)
        # Stochastic depth grows linearly with depth, as in VideoMAE and timm.
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rate,
                layer_scale_init=layer_scale_init,
                norm_eps=norm_eps,
            )
            for rate in rates
        )
        # Without final_norm (mean-pooling classifiers), the norm moves after the pooling.
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self.norm_eps = norm_eps
        self.apply(init_vit_weights)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (time slots, rows, columns)."""
        return self.patch_embed.grid

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    @property
    def tubelet_size(self) -> int:
        return self.patch_embed.tubelet_size

    @property
    def patch_size(self) -> int:
        return self.patch_embed.patch_size

    @property
    def in_chans(self) -> int:
        return self.patch_embed.in_chans

    def forward_features(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        if ids_keep is None:
            x = self.patch_embed(x)
            # In the tokens' dtype (bf16 under autocast), as on the kept-token path below:
            # in the input's (fp32) the whole residual stream would run in fp32.
            x = x + self.pos_embed.to(x.dtype)
        else:
            # Embed only the kept tubelets (and add only their positions).
            x = self.patch_embed.forward_visible(x, ids_keep)
            pos = self.pos_embed.to(x.dtype).expand(x.shape[0], -1, -1)
            x = x + torch.gather(pos, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = run_blocks(self.blocks, x, self.grad_checkpointing and self.training)
        return self.norm(x)

    def forward(self, x: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, ids_keep)
