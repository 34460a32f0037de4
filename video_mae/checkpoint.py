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
import shutil
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
        set_default_mode(tmp_name)
        os.replace(tmp_name, path)
    except (OSError, RuntimeError) as err:
        # Keep the previous checkpoint; remove only our own partial file. A full disk shows
        # up as an OSError from flush/fsync, or as a RuntimeError from torch's zip writer.
        Path(tmp_name).unlink(missing_ok=True)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        needed = _state_bytes(state)
        free = shutil.disk_usage(path.parent).free
        if isinstance(err, RuntimeError) and (free < needed or "unexpected pos" in reason):
            # torch's zip writer reports a short write as "[enforce fail ...] unexpected pos".
            reason = f"the disk is full: {free / 2**20:.0f} MiB free"
        raise CheckpointError(
            f"{path}: could not write the checkpoint ({reason}); it needs about {needed / 2**20:.0f} MiB free in "
            f"{path.parent}; " + ("the previous checkpoint is intact" if path.is_file() else "nothing was there before")
        ) from err
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def set_default_mode(path: str | Path) -> None:
    """Gives ``path`` the permissions a plainly created file gets (0666 less the umask):
    ``mkstemp`` makes its files private (0600), which a shared run folder should not be."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _state_bytes(value: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint state: about its size on disk."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_state_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_state_bytes(v) for v in value)
    return 0


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
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable video_mae checkpoint ({load_failure(err)})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a video_mae checkpoint (no 'model' entry)")
    return state


def load_failure(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one clause. PyTorch's own
    message suggests re-running with the weights-only guard turned off: for a file of unknown origin
    that would run whatever code it holds, so that advice is not passed on."""
    text = str(err).strip()
    if "Weights only load failed" in text or "weights_only" in text:
        return (
            "it holds pickled Python objects, not only tensors and plain containers; refused, "
            "since unpickling them could run code from the file"
        )
    first = text.splitlines()[0].strip() if text else type(err).__name__
    return first or type(err).__name__
