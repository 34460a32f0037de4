"""Which hidden tokens the decoder reconstructs: VideoMAE V2's running-cell decoder masking.

VideoMAE V2 (Wang et al., CVPR 2023, "dual masking") drops part of the decoder's
work: the decoder reconstructs only the tokens a "running cell" pattern leaves
visible. Each 2x2 block of patches holds ``int(4 * ratio)`` decoder-masked
positions, and the pattern moves by one position per time slot, so over four time
slots every patch is reconstructed (the paper's ratio 0.5 keeps half the tokens).

Two choices of ours, to keep shapes static and the loss on tokens the encoder
did not see:

- Only encoder-hidden tokens are reconstructed (a visible token's pixels are in
  the encoder's input, so a loss there teaches little).
- Every sample reconstructs the same number of tokens,
  ``round(n_masked * (4 - int(4 * ratio)) / 4)``. The tokens the cell leaves visible
  come first; when the cell picks more or fewer hidden tokens than that (tube masks
  and the cell are drawn independently), a random subset is dropped or random
  other hidden tokens fill the gap.
"""

from __future__ import annotations

import torch

from .masking import Mask


class RunningCellMasking:
    """``masking.select(mask, grid, generator) -> [B, n_pred]`` sorted token indices,
    a subset of ``mask.ids_mask``, for the decoder to reconstruct."""

    def __init__(self, ratio: float = 0.5) -> None:
        ratio = float(ratio)
        masked_per_cell = int(4 * ratio)
        if not 0 < masked_per_cell < 4:
            raise ValueError(
                f"decoder_mask_ratio must mask 1, 2 or 3 of the 4 positions of a 2x2 cell "
                f"(0.25 <= ratio < 1), got {ratio}"
            )
        self.ratio = ratio
        self.masked_per_cell = masked_per_cell

    def num_predicted(self, num_masked: int) -> int:
        return max(1, round(num_masked * (4 - self.masked_per_cell) / 4))

    def cell_visible(self, batch_size: int, grid: tuple[int, int, int], device: torch.device | str, generator: torch.Generator | None = None) -> torch.Tensor:
        """[B, N] bool: True where the running cell leaves a token to the decoder.
        Each sample starts the cell at a random one of its four phases."""
        t, h, w = grid
        rows = torch.arange(h, device=device)[:, None] % 2
        cols = torch.arange(w, device=device)[None, :] % 2
        position = (rows * 2 + cols).reshape(1, 1, h * w)  # place inside the 2x2 cell
        slot = torch.arange(t, device=device).reshape(1, t, 1)
        phase = torch.randint(0, 4, (batch_size, 1, 1), device=device, generator=generator)
        # The cell's first `masked_per_cell` places are masked; the pattern advances one
        # place per time slot (the official generator advances before its first slot).
        place = (position + slot + phase + 1) % 4
        return (place >= self.masked_per_cell).reshape(batch_size, t * h * w)

    def select(self, mask: Mask, grid: tuple[int, int, int], generator: torch.Generator | None = None) -> torch.Tensor:
        batch, num_masked = mask.ids_mask.shape
        device = mask.ids_mask.device
        visible = self.cell_visible(batch, grid, device, generator)
        preferred = torch.gather(visible, 1, mask.ids_mask).float()
        # Cell-visible tokens score in [1, 2), the rest in [0, 1): top-k takes the cell's
        # picks first and breaks ties at random.
        score = preferred + torch.rand(batch, num_masked, device=device, generator=generator)
        chosen = torch.topk(score, self.num_predicted(num_masked), dim=1).indices
        return torch.sort(torch.gather(mask.ids_mask, 1, chosen), dim=1).values

    def __repr__(self) -> str:
        return f"RunningCellMasking(ratio={self.ratio})"
