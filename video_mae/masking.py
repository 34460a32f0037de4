"""Which tokens the encoder sees: tube masking and random masking behind one interface.

A masking object is called with the batch size, the token grid (time slots, rows,
columns) and a device, and returns a :class:`Mask`. Masks are drawn on that device
from an optional ``torch.Generator`` (so a seeded run draws the same masks again,
and nothing waits on the CPU), and every sample keeps exactly the same number of
visible tokens, which keeps tensor shapes static.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mask:
    """Indices are sorted ascending within each row, so visible tokens keep their
    (t, h, w) order and predictions come out in the order of ``mask``'s True entries.

    ids_keep: [B, n_visible] token indices the encoder sees.
    ids_mask: [B, n_masked] token indices the decoder predicts.
    mask:     [B, N] bool, True where a token is masked (hidden from the encoder).
    """

    ids_keep: torch.Tensor
    ids_mask: torch.Tensor
    mask: torch.Tensor

    @property
    def ids_restore(self) -> torch.Tensor:
        """[B, N]: for each token position, its index in cat(visible, masked)."""
        return torch.argsort(torch.cat([self.ids_keep, self.ids_mask], dim=1), dim=1)

    def take(self, rows: torch.Tensor) -> "Mask":
        """The masks of the given batch rows (a data-parallel rank's share of a global batch)."""
        return Mask(ids_keep=self.ids_keep[rows], ids_mask=self.ids_mask[rows], mask=self.mask[rows])

    @classmethod
    def from_split(cls, ids_mask: torch.Tensor, ids_keep: torch.Tensor, num_tokens: int) -> "Mask":
        """Builds a Mask from unsorted per-row lists of masked and visible token indices."""
        ids_mask = torch.sort(ids_mask, dim=1).values
        ids_keep = torch.sort(ids_keep, dim=1).values
        mask = torch.zeros(ids_mask.shape[0], num_tokens, dtype=torch.bool, device=ids_mask.device)
        mask.scatter_(1, ids_mask, True)
        return cls(ids_keep=ids_keep, ids_mask=ids_mask, mask=mask)


def _check_ratio(ratio: float) -> float:
    ratio = float(ratio)
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask.ratio must be strictly between 0 and 1, got {ratio}")
    return ratio


def _num_masked(ratio: float, count: int, what: str) -> int:
    # int() truncation as in VideoMAE's mask generators, so counts match its recipes.
    masked = int(ratio * count)
    if masked < 1 or masked >= count:
        raise ValueError(
            f"mask.ratio={ratio} masks {masked} of the {count} tokens per {what}; "
            "at least one token must be masked and one visible"
        )
    return masked


class Masking:
    """The interface: ``masking(batch_size, grid, device, generator) -> Mask`` and
    ``masking.num_visible(grid)``."""

    def __init__(self, ratio: float = 0.9) -> None:
        self.ratio = _check_ratio(ratio)

    def num_visible(self, grid: tuple[int, int, int]) -> int:
        raise NotImplementedError

    def __call__(
        self,
        batch_size: int,
        grid: tuple[int, int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Mask:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ratio={self.ratio})"


class TubeMasking(Masking):
    """One spatial mask per sample, shared by every time slot (VideoMAE's tube masking):
    a masked patch stays masked for the whole clip, so it cannot be copied from
    a neighbouring frame. Per sample ``int(ratio * rows * cols)`` patches are masked
    in each time slot."""

    def num_visible(self, grid: tuple[int, int, int]) -> int:
        t, h, w = grid
        return t * (h * w - _num_masked(self.ratio, h * w, "time slot"))

    def __call__(
        self,
        batch_size: int,
        grid: tuple[int, int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Mask:
        t, h, w = grid
        per_slot = h * w
        masked = _num_masked(self.ratio, per_slot, "time slot")
        noise = torch.rand(batch_size, per_slot, device=device, generator=generator)
        spatial = torch.argsort(noise, dim=1)  # first `masked` entries are hidden
        # Repeat the spatial choice in every time slot: token index = slot * per_slot + patch.
        offsets = torch.arange(t, device=device)[None, :, None] * per_slot
        ids_mask = (spatial[:, None, :masked] + offsets).reshape(batch_size, -1)
        ids_keep = (spatial[:, None, masked:] + offsets).reshape(batch_size, -1)
        return Mask.from_split(ids_mask, ids_keep, t * per_slot)


class RandomMasking(Masking):
    """Each token is masked independently of the others (per sample, a uniformly
    random subset of ``int(ratio * N)`` tokens)."""

    def num_visible(self, grid: tuple[int, int, int]) -> int:
        count = grid[0] * grid[1] * grid[2]
        return count - _num_masked(self.ratio, count, "clip")

    def __call__(
        self,
        batch_size: int,
        grid: tuple[int, int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Mask:
        count = grid[0] * grid[1] * grid[2]
        masked = _num_masked(self.ratio, count, "clip")
        noise = torch.rand(batch_size, count, device=device, generator=generator)
        order = torch.argsort(noise, dim=1)  # first `masked` entries are hidden
        return Mask.from_split(order[:, :masked], order[:, masked:], count)
