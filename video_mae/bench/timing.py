"""Timing and memory measures every benchmark shares: synchronised medians, FLOP counts,
the measured matmul peak, and the memory a workload adds (CUDA allocator or CPU RSS)."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    return interleaved_medians([fn], device, warmup, repeats)[0]


def interleaved_medians(fns: Sequence[Callable[[], object]], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """The median seconds of each of ``fns``, timed in turns (one call of each per round).
    Timed one after the other, whichever ran while a shared CPU was busier or a GPU's
    clocks were lower would look slower: on a 2-core cloud CPU here, the same encoder
    forward read 0.78x transformers' timed after it and 0.98x timed in turns."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, taken in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            synchronize(device)
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in times]


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_peak_tflops(device: torch.device, precision: str, size: int | None = None, repeats: int = 10) -> float:
    """Measured dense matmul rate in the run's number format (the denominator of
    the peak fraction): square products of ``size`` (8192 on a GPU, 2048 on the CPU:
    at 1024 the CPU rate varied by 2x between calls of one run here), the faster of
    ``a @ b`` and ``F.linear(a, b)`` (the layers' op, the second factor transposed).
    On a CPU without native bf16 the two take different fallback kernels: on an AVX2
    EPYC here, in bf16, 0.3-1.4 GFLOP/s for ``a @ b`` (256 to 2048 square) and 18-22 for
    the linear, so ``a @ b`` alone put our models at 10-36x "the peak". The forms are first screened on products a
    quarter of the size: one more than twice as slow as the other cannot be the peak and
    is not timed at full size (one 2048-square bf16 ``a @ b`` took 58 s there)."""
    size = size or (8192 if device.type == "cuda" else 2048)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)

    def forms(n: int) -> list[Callable[[], object]]:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        return [lambda: a @ b, lambda: torch.nn.functional.linear(a, b)]

    screened = interleaved_medians(forms(max(size // 4, 1)), device, warmup=1, repeats=1)
    kept = [form for form, seconds in zip(forms(size), screened, strict=True) if seconds <= 2 * min(screened)]
    seconds = min(interleaved_medians(kept, device, warmup=2, repeats=repeats))
    return 2 * size**3 / seconds / 1e12


def _release_free_heap() -> None:
    """Hands the C heap's free pages back to the OS (glibc's ``malloc_trim``), so that
    resident memory measures what a workload allocates, not what an earlier one freed
    and the heap kept (after a free, glibc serves even large blocks from its heap)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of what runs inside the ``with`` block, in GiB: on CUDA the allocator's
    peak; on the CPU the highest resident memory of this process, sampled every 2 ms
    by a thread (torch releases the GIL in its kernels), less the resident memory at
    the start, after the heap's free pages went back to the OS: the memory the
    workload adds."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.gib: float | None = None
        self._stop = threading.Event()
        self._peak = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, resident_mib())

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _release_free_heap()
            self._start = self._peak = resident_mib()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.gib = torch.cuda.max_memory_allocated(self.device) / 2**30
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, resident_mib())
            self.gib = (self._peak - self._start) / 1024


def resident_mib() -> float:
    """This process's resident memory now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
