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
