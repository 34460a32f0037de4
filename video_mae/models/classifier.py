"""Action recognition on top of the video encoder (VideoMAE's fine-tuning head)."""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

from .vit import VisionTransformer3D


class VideoClassifier(nn.Module):
    """Encoder over all tokens, then either the mean of the tokens followed by
    ``fc_norm`` (VideoMAE's default; build the encoder with ``final_norm=False``),
    or the encoder's final norm and its first token; dropout; a linear head.

    The head starts at ``head_init_scale`` times a truncated-normal draw (0.001 in
    VideoMAE), so the first steps barely move the pretrained encoder.
    ``fc_norm_eps`` defaults to the encoder's norm epsilon (Hugging Face uses 1e-5).
    """

    def __init__(
        self,
        encoder: VisionTransformer3D,
        num_classes: int,
        mean_pooling: bool = True,
        head_dropout: float = 0.0,
        head_init_scale: float = 0.001,
        fc_norm_eps: float | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"data.num_classes must be at least 1, got {num_classes}")
        has_final_norm = isinstance(encoder.norm, nn.LayerNorm)
        if mean_pooling == has_final_norm:
            raise ValueError(
                "mean pooling needs an encoder built with final_norm=False (the norm follows the pooling); "
                "first-token pooling needs final_norm=True"
            )
        self.encoder = encoder
        self.num_classes = num_classes
        self.mean_pooling = mean_pooling
        eps = fc_norm_eps if fc_norm_eps is not None else encoder.norm_eps
        self.fc_norm = nn.LayerNorm(encoder.embed_dim, eps=eps) if mean_pooling else None
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(encoder.embed_dim, num_classes)
        trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.weight.mul_(head_init_scale)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """[B, C, T, H, W] -> pooled features [B, D] (before dropout and head)."""
        tokens = self.encoder.forward_features(video)
        if self.fc_norm is not None:
            return self.fc_norm(tokens.mean(dim=1))
        return tokens[:, 0]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_dropout(self.forward_features(video)))
