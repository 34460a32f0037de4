"""Running a function over many items in worker processes, with a time limit per item.

A decoder stuck inside native code cannot be interrupted from Python, so each item
runs in a worker process; a worker that exceeds the limit is killed and replaced,
and its item is reported as timed out. The other items carry on.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


@dataclass(frozen=True)
class TimedOut:
    seconds: float


@dataclass(frozen=True)
class Crashed:
    reason: str


def _serve(fn: Callable[[Any], Any], conn: Connection) -> None:
    while True:
        message = conn.recv()
        if message is None:
            return
        index, item = message
        try:
            result = fn(item)
        except Exception as err:  # reported per item, the worker lives on
            result = Crashed(f"{type(err).__name__}: {err}")
        conn.send((index, result))


class _Worker:
    def __init__(self, fn: Callable[[Any], Any], context: mp.context.BaseContext) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(fn, child), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0

    def submit(self, index: int, item: Any) -> None:
        self.task, self.started = index, time.monotonic()
        self.conn.send((index, item))

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


def map_with_timeout(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, timeout_s: float) -> Iterator[tuple[int, Any]]:
    """Yields (index, result) as items finish, in completion order. ``result`` is
    ``fn(item)``, ``TimedOut`` when the item took longer than ``timeout_s`` (its
    worker is killed and replaced), or ``Crashed`` when ``fn`` raised or its worker
    died. ``fn`` must be a picklable top-level function."""
    # Not fork: a child forked from a process with threads (OpenMP's, a decoder stuck in a
    # daemon thread, W&B's) can inherit a lock that no thread will release and hang; it did
    # in the test suite. The fork server's children come from a clean, single-threaded process.
    context = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    pending = list(enumerate(items))[::-1]
    pool = [_Worker(fn, context) for _ in range(max(1, min(workers, len(items))))]
    try:
        while True:
            for worker in pool:
                if worker.task is None and pending:
                    worker.submit(*pending.pop())
            busy = [w for w in pool if w.task is not None]
            if not busy:
                return
            deadline = min(w.started for w in busy) + timeout_s
            ready = wait([w.conn for w in busy], timeout=max(0.0, deadline - time.monotonic()))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        index, result = worker.conn.recv()
                    except (EOFError, OSError):  # the worker died (e.g. a segfault in a decoder)
                        index, result = worker.task, Crashed("the worker process died")
                        worker.kill()
                        pool[pool.index(worker)] = _Worker(fn, context)
                    else:
                        worker.task = None
                    yield index, result
                elif time.monotonic() - worker.started >= timeout_s:
                    index = worker.task
                    worker.kill()
                    pool[pool.index(worker)] = _Worker(fn, context)
                    yield index, TimedOut(timeout_s)
    finally:
        for worker in pool:
            worker.stop()
