"""Which tokens the encoder sees (tube and random masking behind one interface, either
with one end of the clip hidden whole), and
which hidden tokens the decoder reconstructs (running-cell decoder masking).

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
    ids_mask: [B, n_masked] token indices hidden from the encoder.
    mask:     [B, N] bool, True where a token is masked (hidden from the encoder).
    ids_pred: [B, n_pred] the hidden tokens a decoder masking picked for the decoder
              to reconstruct, or None: all of ``ids_mask``.
    """

    ids_keep: torch.Tensor
    ids_mask: torch.Tensor
    mask: torch.Tensor
    ids_pred: torch.Tensor | None = None

    @property
    def ids_restore(self) -> torch.Tensor:
        """[B, N]: for each token position, its index in cat(visible, masked)."""
        return torch.argsort(torch.cat([self.ids_keep, self.ids_mask], dim=1), dim=1)

    def take(self, rows: torch.Tensor) -> Mask:
        """The masks of the given batch rows (a data-parallel rank's share of a global batch)."""
        return Mask(
            ids_keep=self.ids_keep[rows],
            ids_mask=self.ids_mask[rows],
            mask=self.mask[rows],
            ids_pred=self.ids_pred[rows] if self.ids_pred is not None else None,
        )

    @classmethod
    def from_split(cls, ids_mask: torch.Tensor, ids_keep: torch.Tensor, num_tokens: int) -> Mask:
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
            f"mask.ratio={ratio} masks {masked} of the {count} tokens per {what}; at least one token must be masked and one visible"
        )
    return masked


class Masking:
    """The interface: ``masking(batch_size, grid, device, generator) -> Mask`` and
    ``masking.num_visible(grid)``.

    ``span`` (0 by default: off) also hides one end of every clip whole: the first or
    the last ``round(span * slots)`` time slots, picked per sample with equal odds, and
    the masking's own pattern applies to the time slots that are left. Why: under tube
    masking a hidden patch can be filled in from its visible neighbours in the same time
    slot, without knowing any motion; with one end of the clip hidden, the decoder has to
    carry the visible motion forward (or backward), so the encoder has to represent it.
    Past and future are hidden alike, so a clip and its time reversal are treated the same.
    """

    def __init__(self, ratio: float = 0.9, span: float = 0.0) -> None:
        self.ratio = _check_ratio(ratio)
        span = float(span)
        if not 0.0 <= span < 1.0:
            raise ValueError(f"mask.span must be in [0, 1), got {span}")
        self.span = span

    def hidden_slots(self, grid: tuple[int, int, int]) -> int:
        """How many time slots at one end of the clip are hidden whole."""
        slots = grid[0]
        if not self.span:
            return 0
        hidden = round(self.span * slots)
        if not 1 <= hidden < slots:
            raise ValueError(
                f"mask.span={self.span} hides {hidden} of the {slots} time slots; "
                "at least one slot must be hidden and one seen (or mask.span=0: none)"
            )
        return hidden

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

    def _in_seen_slots(self, ids_keep: torch.Tensor, grid: tuple[int, int, int], generator: torch.Generator | None) -> Mask:
        """The Mask of a clip whose seen slots are ``ids_keep`` (token indices counted over
        the seen slots only) once one end is hidden: the seen slots start at slot 0 (the
        future is hidden) or at slot ``hidden`` (the past is), per sample."""
        t, h, w = grid
        batch, per_slot = ids_keep.shape[0], h * w
        hidden = self.hidden_slots(grid)
        hide_past = torch.rand(batch, device=ids_keep.device, generator=generator) < 0.5
        ids_keep = ids_keep + (hide_past.long() * hidden * per_slot)[:, None]
        is_hidden = torch.ones(batch, t * per_slot, dtype=torch.bool, device=ids_keep.device)
        is_hidden.scatter_(1, ids_keep, False)
        # Every row hides the same count, so the nonzero columns reshape to [B, n_masked].
        ids_mask = torch.nonzero(is_hidden)[:, 1].reshape(batch, -1)
        return Mask.from_split(ids_mask, ids_keep, t * per_slot)

    def __repr__(self) -> str:
        span = f", span={self.span}" if self.span else ""
        return f"{type(self).__name__}(ratio={self.ratio}{span})"


class TubeMasking(Masking):
    """One spatial mask per sample, shared by every time slot (VideoMAE's tube masking):
    a masked patch stays masked for the whole clip, so it cannot be copied from
    a neighbouring frame. Per sample ``int(ratio * rows * cols)`` patches are masked
    in each (seen) time slot."""

    def num_visible(self, grid: tuple[int, int, int]) -> int:
        t, h, w = grid
        return (t - self.hidden_slots(grid)) * (h * w - _num_masked(self.ratio, h * w, "time slot"))

    def __call__(
        self,
        batch_size: int,
        grid: tuple[int, int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Mask:
        t, h, w = grid
        seen = t - self.hidden_slots(grid)
        per_slot = h * w
        masked = _num_masked(self.ratio, per_slot, "time slot")
        noise = torch.rand(batch_size, per_slot, device=device, generator=generator)
        spatial = torch.argsort(noise, dim=1)  # first `masked` entries are hidden
        # Repeat the spatial choice in every time slot: token index = slot * per_slot + patch.
        offsets = torch.arange(seen, device=device)[None, :, None] * per_slot
        ids_keep = (spatial[:, None, masked:] + offsets).reshape(batch_size, -1)
        if seen < t:
            return self._in_seen_slots(ids_keep, grid, generator)
        ids_mask = (spatial[:, None, :masked] + offsets).reshape(batch_size, -1)
        return Mask.from_split(ids_mask, ids_keep, t * per_slot)


class RandomMasking(Masking):
    """Each token is masked independently of the others (per sample, a uniformly
    random subset of ``int(ratio * N)`` of the N tokens of the seen time slots)."""

    def num_visible(self, grid: tuple[int, int, int]) -> int:
        count = (grid[0] - self.hidden_slots(grid)) * grid[1] * grid[2]
        return count - _num_masked(self.ratio, count, "clip")

    def __call__(
        self,
        batch_size: int,
        grid: tuple[int, int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Mask:
        t, h, w = grid
        count = (t - self.hidden_slots(grid)) * h * w
        masked = _num_masked(self.ratio, count, "clip")
        noise = torch.rand(batch_size, count, device=device, generator=generator)
        order = torch.argsort(noise, dim=1)  # first `masked` entries are hidden
        if count < t * h * w:
            return self._in_seen_slots(order[:, masked:], grid, generator)
        return Mask.from_split(order[:, :masked], order[:, masked:], count)


# Decoder masking
#
# VideoMAE V2 (Wang et al., CVPR 2023, "dual masking") drops part of the decoder's
# work: the decoder reconstructs only the tokens a "running cell" pattern leaves
# visible. Each 2x2 block of patches holds ``int(4 * ratio)`` decoder-masked
# positions, and the pattern moves by one position per time slot, so over four time
# slots every patch is reconstructed (the paper's ratio 0.5 keeps half the tokens).
#
# Two choices of ours, to keep shapes static and the loss on tokens the encoder
# did not see:
#
# - Only encoder-hidden tokens are reconstructed (a visible token's pixels are in
#   the encoder's input, so a loss there teaches little).
# - Every sample reconstructs the same number of tokens,
#   ``round(n_masked * (4 - int(4 * ratio)) / 4)``. The tokens the cell leaves visible
#   come first; when the cell picks more or fewer hidden tokens than that (tube masks
#   and the cell are drawn independently), a random subset is dropped or random
#   other hidden tokens fill the gap.


class RunningCellMasking:
    """``masking.select(mask, grid, generator) -> [B, n_pred]`` sorted token indices,
    a subset of ``mask.ids_mask``, for the decoder to reconstruct."""

    def __init__(self, ratio: float = 0.5) -> None:
        ratio = float(ratio)
        masked_per_cell = int(4 * ratio)
        if not 0 < masked_per_cell < 4:
            raise ValueError(f"decoder_mask_ratio must mask 1, 2 or 3 of the 4 positions of a 2x2 cell (0.25 <= ratio < 1), got {ratio}")
        self.ratio = ratio
        self.masked_per_cell = masked_per_cell

    def num_predicted(self, num_masked: int) -> int:
        return max(1, round(num_masked * (4 - self.masked_per_cell) / 4))

    def cell_visible(
        self, batch_size: int, grid: tuple[int, int, int], device: torch.device | str, generator: torch.Generator | None = None
    ) -> torch.Tensor:
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
