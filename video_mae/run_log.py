"""Run logs: one JSON object per line in ``log.jsonl``, mirrored to TensorBoard and Weights & Biases if asked."""

from __future__ import annotations

import hashlib
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
    run keeps everything logged before the kill). Numeric fields of records that
    carry a ``step`` also go to TensorBoard (``tensorboard``: ``<run_dir>/tb``) and to
    Weights & Biases (``wandb``: project ``video_mae``, files under ``<run_dir>/wandb``;
    ``WANDB_MODE=offline`` keeps them there). ``config`` is the run's resolved
    configuration, for W&B's run page."""

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool = False,
        enabled: bool = True,
        wandb: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(run_dir) / "log.jsonl"
        self.enabled = enabled
        self._tb = None
        self._wandb = None
        if enabled and wandb:
            self._wandb = _start_wandb(Path(run_dir), config or {})
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional (train.tensorboard): tensorboard is an extra
            except ImportError:
                warnings.warn(
                    "train.tensorboard=true but tensorboard is not installed "
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
        if "step" not in fields or (self._tb is None and self._wandb is None):
            return
        scalars = {
            f"{kind}/{key}": value
            for key, value in fields.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, fields["step"])
        if self._wandb is not None and scalars:
            # Not `step=`: W&B drops records whose step goes back, which a resumed run's do.
            self._wandb.log({**scalars, "step": fields["step"]})

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _start_wandb(run_dir: Path, config: dict[str, Any]):
    """A W&B run for ``run_dir``; its id is a digest of the folder's path, so a resumed
    run continues the same W&B run. None (with a warning) when wandb is not installed."""
    try:
        import wandb  # optional (train.wandb): the [wandb] extra
    except ImportError:
        warnings.warn(
            "train.wandb=true but wandb is not installed (pip install 'video_mae[wandb]'); logging to log.jsonl only",
            stacklevel=3,
        )
        return None
    run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    run = wandb.init(
        project="video_mae", name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir), config=config,
    )  # fmt: skip
    run.define_metric("*", step_metric="step")
    return run


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``log.jsonl`` file, in the order written (every record, also the
    ones a resume repeated; see ``read_log_records`` for the ones that stand)."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_log_records(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Records of a ``log.jsonl`` grouped by ``kind``, sorted by ``step``.

    Lines that do not parse (a run killed mid-write leaves half a line) are skipped. After a
    resume the steps between the last checkpoint and the kill are logged again, so only the
    LAST record per (kind, step) is kept. Records without an integer ``step`` are all kept.
    A missing file gives ``{}``.
    """
    try:
        # errors="replace": a write cut inside a multi-byte character must not raise here.
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    latest: dict[str, dict[Any, dict[str, Any]]] = {}
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            continue
        step = record.get("step")
        key = step if isinstance(step, int) and not isinstance(step, bool) else ("line", number)
        latest.setdefault(record["kind"], {})[key] = record
    return {
        kind: sorted(by_key.values(), key=lambda r: r["step"] if isinstance(r.get("step"), int) else math.inf)
        for kind, by_key in latest.items()
    }
