"""A reader's speed and resident memory over many open / decode / close cycles."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..data.readers import open_video
from ..data.sampling import ClipSampler
from .timing import resident_mib


@dataclass
class ReaderMemory:
    backend: str
    decodes: int
    seconds: float
    rss_start_mib: float
    rss_end_mib: float
    rss_max_mib: float
    samples: list[tuple[int, float]]


def bench_reader_memory(paths: list[str], backend: str, decodes: int, num_frames: int = 16, sampling_rate: int = 4,
                        every: int = 1000) -> ReaderMemory:  # fmt: skip
    """Opens, decodes one random clip and closes, ``decodes`` times over ``paths``,
    sampling this process's resident memory every ``every`` decodes (after 100
    warm-up decodes, which fill allocator pools)."""
    sampler = ClipSampler(num_frames, sampling_rate)
    rng = np.random.default_rng(0)

    def one(i: int) -> None:
        with open_video(paths[i % len(paths)], backend) as video:
            clip = sampler.random_clips(video.info.num_frames, 1, rng)[0]
            video.get_frames(clip.tolist())

    for i in range(100):
        one(i)
    start_rss = resident_mib()
    samples = [(0, start_rss)]
    start = time.perf_counter()
    for i in range(decodes):
        one(i)
        if (i + 1) % every == 0:
            samples.append((i + 1, resident_mib()))
    seconds = time.perf_counter() - start
    if samples[-1][0] != decodes:  # the end is always measured, not only every `every` decodes
        samples.append((decodes, resident_mib()))
    return ReaderMemory(backend, decodes, seconds, start_rss, samples[-1][1], max(r for _, r in samples), samples)
