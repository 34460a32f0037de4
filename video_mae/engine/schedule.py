"""Learning rate by optimizer step: linear warm-up, then cosine decay to the final value."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosineSchedule:
    peak_lr: float
    final_lr: float
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"the schedule needs at least one step, got total_steps={self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} outside [0, total_steps={self.total_steps}]")

    def __call__(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / decay_steps) if decay_steps else 1.0
        return self.final_lr + 0.5 * (self.peak_lr - self.final_lr) * (1 + math.cos(math.pi * progress))
