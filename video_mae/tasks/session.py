"""What every task starts and ends the same way: the device, the process group, the
precision, and at the end the summary and the process group's shutdown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..distributed import DistContext, finish_distributed, init_distributed, local_device
from ..engine.device import resolve_device, resolve_precision
from .run_dir import write_summary


@dataclass(frozen=True)
class TaskSession:
    """Where a task runs: this process's device (under torchrun, its local GPU), the
    process group and the resolved precision."""

    device: torch.device
    context: DistContext
    precision: str

    def finish(self, folder: Path, summary: dict) -> dict:
        """Writes ``folder/summary.json`` from the main process; returns ``summary``."""
        if self.context.is_main:
            write_summary(folder, summary)
        return summary


@contextmanager
def task_session(device: str, precision: str, embed_dim: int) -> Iterator[TaskSession]:
    """Resolves ``device`` (auto | cpu | cuda[:i]), joins the process group torchrun or srun
    set up (if any) and resolves ``precision`` for an encoder ``embed_dim`` wide (auto
    picks bf16 only where it is measured faster). The process group is left on the way
    out, also when the task fails, so that other ranks are not kept waiting."""
    resolved = resolve_device(device)
    context = init_distributed(resolved)
    try:
        resolved = local_device(resolved, context)
        yield TaskSession(resolved, context, resolve_precision(precision, resolved, embed_dim))
    finally:
        finish_distributed(context)
