"""Checkpoints: tensors and plain containers only, written atomically.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (model and
optimizer state, step counters, RNG states, the resolved config as a plain dict),
so it loads with ``torch.load(weights_only=True)``: opening a checkpoint never
runs code. It is written to a temporary file in the same folder, flushed to
disk, then renamed over the target, so a crash mid-write leaves the previous
file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not hold what was expected."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Atomically writes ``state`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format_version": FORMAT_VERSION, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as err:
        # Keep the previous checkpoint; remove only our own partial file.
        Path(tmp_name).unlink(missing_ok=True)
        raise CheckpointError(f"{path}: could not write the checkpoint ({err}); the previous checkpoint is intact") from err
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint onto the CPU with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable video_mae checkpoint ({err})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a video_mae checkpoint (no 'model' entry)")
    return state
