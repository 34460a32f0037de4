"""Moving between clips and per-tubelet pixel vectors (the reconstruction targets)."""

from __future__ import annotations

import torch
from einops import rearrange


def patchify(video: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, N, tubelet_size * patch_size**2, C], tokens in (t, h, w) order.

    The pixel order inside a tubelet is (frame, row, column) with the channel last,
    the layout VideoMAE's decoder head predicts.
    """
    return rearrange(
        video,
        "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c",
        p0=tubelet_size,
        p1=patch_size,
        p2=patch_size,
    )


def unpatchify(patches: torch.Tensor, grid: tuple[int, int, int], tubelet_size: int, patch_size: int) -> torch.Tensor:
    """Inverse of :func:`patchify`. Accepts [B, N, P, C] or flattened [B, N, P * C]."""
    t, h, w = grid
    if patches.dim() == 3:
        patches = rearrange(patches, "b n (p c) -> b n p c", p=tubelet_size * patch_size * patch_size)
    return rearrange(
        patches,
        "b (t h w) (p0 p1 p2) c -> b c (t p0) (h p1) (w p2)",
        t=t,
        h=h,
        w=w,
        p0=tubelet_size,
        p1=patch_size,
        p2=patch_size,
    )


PATCH_NORM_EPS = 1e-6  # added to each tubelet's standard deviation (VideoMAE's value)


def normalize_patches(patches: torch.Tensor, eps: float = PATCH_NORM_EPS, dim: int = -2) -> torch.Tensor:
    """Per-tubelet, per-channel standardisation over the pixels of each tubelet (along
    ``dim``; unbiased variance, ``eps`` added to the standard deviation), as VideoMAE's
    normalised-pixel target. Default layout: [B, N, P, C], as :func:`patchify` gives.

    Two passes (the mean, then the centred squares): the CPU's one-pass ``var`` took
    5.6 ms against 1.0 ms on a ViT-S step's targets, with the same values to 2e-7."""
    centred = patches - patches.mean(dim=dim, keepdim=True)
    std = (centred.square().sum(dim=dim, keepdim=True) / (patches.shape[dim] - 1)).sqrt()
    return centred / (std + eps)
