"""One writer per run folder: an advisory lock on ``<run>/.lock``.

Two commands started in the same folder would both train, log every step twice and race
for ``last.pt``. The lock is ``flock`` on an open file, so the kernel drops it when the
holder dies however it dies (a SIGKILL included): a lock file left by a dead process is
simply taken over, with a warning naming it. The file records the holder's PID and host
so that the refusal can name them.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

# Folders this process holds, so that a task run twice in one process (tests, notebooks,
# the learning benchmark) re-enters its own lock instead of refusing itself.
_held: dict[Path, IO[str]] = {}


class RunFolderLocked(RuntimeError):
    """Another live process writes to this run folder."""


def _holder(text: str) -> str:
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    return f"PID {fields.get('pid', '?')} on {fields.get('host', '?')}"


def lock_run_folder(folder: str | Path) -> None:
    """Takes ``folder``'s lock for the rest of this process (or until ``release_run_folder``)."""
    folder = Path(folder).resolve()
    if folder in _held:
        return
    try:
        import fcntl  # POSIX only; elsewhere the lock is skipped
    except ImportError:  # not POSIX: no advisory locks, run unguarded
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = _holder(handle.read())
        handle.close()
        raise RunFolderLocked(
            f"{folder} is in use by another run ({holder}); wait for it to finish, stop it, or choose another hydra.run.dir"
        ) from None
    except OSError as err:  # a file system without flock (some network mounts): run unguarded
        log.warning("%s: cannot lock the run folder (%s); make sure no other run writes to it", folder, err)
        handle.close()
        return
    handle.seek(0)
    previous = handle.read().strip()
    if previous:
        log.warning("%s: taking over the lock left by %s, which is no longer running", folder, _holder(previous))
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid={os.getpid()} host={socket.gethostname()}\n")
    handle.flush()
    _held[folder] = handle


def release_run_folder(folder: str | Path) -> None:
    """Gives the lock back (its file stays, empty, for the next holder)."""
    handle = _held.pop(Path(folder).resolve(), None)
    if handle is not None:
        handle.seek(0)
        handle.truncate()
        handle.close()


@atexit.register
def _release_all() -> None:
    # A normal exit empties the lock files, so that only a killed holder leaves its name.
    for folder in list(_held):
        release_run_folder(folder)
