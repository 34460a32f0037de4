"""Fixed sine-cosine positional table."""

from __future__ import annotations

import torch


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """The [num_positions, dim] table VideoMAE adds to its tokens.

    It is a 1-D table over the flattened (t, h, w) token index, not a factorised
    space-time one, so that released VideoMAE weights work unchanged. Channels
    2i and 2i+1 share the angle ``pos / 10000 ** (2i / dim)``; even channels hold
    its sine, odd channels its cosine. Computed in float64, returned as float32.
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    pair = torch.div(torch.arange(dim), 2, rounding_mode="floor").to(torch.float64)
    angles = position / torch.pow(10000.0, 2.0 * pair / dim)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


def resize_pos_embed(table: torch.Tensor, source_grid: tuple[int, int, int], target_grid: tuple[int, int, int]) -> torch.Tensor:
    """Resamples a [t*h*w, D] positional table from ``source_grid`` to ``target_grid``
    in time and in space (trilinear), so that a token keeps roughly the position
    code it had during pretraining when the clip length, tubelet or crop changes."""
    t, h, w = source_grid
    if table.shape[0] != t * h * w:
        raise ValueError(f"table has {table.shape[0]} rows, grid {source_grid} has {t * h * w}")
    if tuple(source_grid) == tuple(target_grid):
        return table
    volume = table.T.reshape(1, table.shape[1], t, h, w).float()
    volume = torch.nn.functional.interpolate(volume, size=tuple(target_grid), mode="trilinear", align_corners=False)
    return volume.reshape(table.shape[1], -1).T.to(table.dtype).contiguous()
