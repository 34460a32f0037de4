"""The names of what lies in a run folder, in one place (tasks write them, the Trainer
saves checkpoints there, tools and tests read them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAST = "last.pt"  # the whole training state, rewritten every epoch: what a resume reads
BEST = "best.pt"  # fine-tuning: the best validation epoch's weights, for evaluation and export


@dataclass(frozen=True)
class RunFiles:
    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / LAST

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST

    @property
    def config_file(self) -> Path:
        """The resolved config the run was started with (``config.yaml``)."""
        return self.path / "config.yaml"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def bad_videos(self) -> Path:
        """Videos that could not be read, one ``path<TAB>reason`` line each."""
        return self.path / "bad_videos.txt"

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / name
