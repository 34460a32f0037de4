"""What the loop counts between log records: the loss and throughput window, and the
skipped (non-finite) steps; and the console line it keeps per epoch. Both keep their sums on the device, so that an optimizer
step needs no CPU-GPU sync; reading them is the sync, once per log record."""

from __future__ import annotations

import time

import torch

from ..distributed import DistContext, all_reduce


class NonFiniteLossError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


class NonFiniteTracker:
    """Counts skipped (non-finite) steps on the device; ``read`` is the only sync."""

    def __init__(self, device: torch.device) -> None:
        self.skipped = torch.zeros((), dtype=torch.long, device=device)
        self.in_row = torch.zeros((), dtype=torch.long, device=device)
        self.worst = torch.zeros((), dtype=torch.long, device=device)

    def update(self, finite: torch.Tensor) -> None:
        bad = (~finite).long()
        self.skipped += bad
        self.in_row = (self.in_row + 1) * bad
        self.worst = torch.maximum(self.worst, self.in_row)

    def read(self) -> tuple[int, int]:
        """(steps skipped since the last read, longest run of skipped steps since then)."""
        skipped, worst = int(self.skipped), int(self.worst)
        self.skipped.zero_()
        # A run of skipped steps that is still going carries over into the next window.
        self.worst.copy_(self.in_row)
        return skipped, worst


class LogWindow:
    """Loss and throughput since the last log record. The loss is summed on the
    device; reading it (``flush``) is the only sync, once per log record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.loss = torch.zeros((), device=device)
        self.steps = torch.zeros((), device=device)
        self.clips = 0
        self.start = time.perf_counter()

    def add_step(self, loss: torch.Tensor, finite: torch.Tensor) -> None:
        """Counts the step's loss only if it was applied (device ops, no sync)."""
        self.loss += torch.where(finite, loss, torch.zeros_like(loss))
        self.steps += finite.float()

    def flush(self, context: DistContext = DistContext()) -> tuple[float, float]:
        """(mean loss of the applied steps, clips per second), over all ranks, since the last flush."""
        elapsed = time.perf_counter() - self.start
        totals = torch.stack([self.loss, self.steps, torch.tensor(float(self.clips), device=self.loss.device)])
        loss, steps, clips = all_reduce(totals, context, "sum").tolist()
        steps /= context.world_size  # every rank counts the same applied steps
        mean_loss = loss / context.world_size / steps if steps else float("nan")
        clips_per_s = clips / elapsed if elapsed > 0 else 0.0
        self.loss.zero_()
        self.steps.zero_()
        self.clips, self.start = 0, time.perf_counter()
        return mean_loss, clips_per_s


def epoch_line(epoch: int, epochs: int, loss: float | None, lr: float, clips_per_s: float, elapsed_s: float, remaining_s: float) -> str:
    """The one console line kept per epoch (an epoch's progress bar disappears)."""
    shown = f"{loss:.4f}" if loss is not None else "n/a"
    return (
        f"epoch {epoch + 1}/{epochs}: train loss {shown}, lr {lr:.2e}, {clips_per_s:.1f} clips/s, "
        f"elapsed {_clock(elapsed_s)}, ETA {_clock(remaining_s)}"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
