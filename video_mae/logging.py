"""Run logs: one JSON object per line in ``log.jsonl``, mirrored to TensorBoard if asked."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    # JSON has no NaN/Infinity; write them as strings so the file stays valid JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    """Appends records to ``<run_dir>/log.jsonl`` (flushed per record, so a killed
    run keeps everything logged before the kill). With ``tensorboard``, numeric
    fields of records that carry a ``step`` also go to ``<run_dir>/tb``."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = False, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "log.jsonl"
        self.enabled = enabled
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                warnings.warn(
                    "log.tensorboard=true but tensorboard is not installed "
                    "(pip install 'video_mae[tensorboard]'); logging to log.jsonl only",
                    stacklevel=2,
                )
            else:
                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def log(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "time": round(time.time(), 3), **{k: _plain(v) for k, v in fields.items()}}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tb is not None and "step" in fields:
            for key, value in fields.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{key}", value, fields["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``log.jsonl`` file."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
