"""The training loader's throughput: clips per second per worker on a data list."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..data.lists import VideoRecord
from ..data.loader import EpochSampler, make_loader, training_dataset
from ..data.settings import DataSettings
from ..data.transforms import ClipTransform


@dataclass
class LoaderTiming:
    clips_per_video: int
    workers: int
    videos: int
    clips: int
    seconds: float
    clips_per_s: float
    clips_per_s_per_worker: float


def bench_loader(
    records: Sequence[VideoRecord],
    data: DataSettings,
    augment: ClipTransform,
    workers: int,
    batch_size: int = 4,
    batches: int = 10,
) -> LoaderTiming:
    """Clips per second the training dataset that ``data`` describes delivers from
    ``records`` (decode, sample, augment, collate; ``data.clips_per_video`` clips per
    decode), after one warm-up batch. With no workers the main process does the work
    and counts as one worker."""
    clips_per_video = data.clips_per_video
    dataset = training_dataset(records, data, augment)
    needed = (batches + 1) * batch_size
    order = EpochSampler(len(dataset), seed=0, epoch=0)
    loader = make_loader(dataset, order, batch_size, workers, timeout_s=600 if workers else 0)
    if len(dataset) < needed:
        raise ValueError(f"the list has {len(dataset)} videos; {needed} are needed for {batches} timed batches of {batch_size}")
    threads = torch.get_num_threads()
    if workers == 0:
        torch.set_num_threads(1)  # one core, as each worker process has
    try:
        iterator = iter(loader)
        next(iterator)  # warm-up: worker start, first opens
        start = time.perf_counter()
        clips = 0
        for _ in range(batches):
            clips += next(iterator)["video"].shape[0] * clips_per_video
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    rate = clips / seconds
    return LoaderTiming(clips_per_video, workers, batches * batch_size, clips, seconds, rate, rate / max(workers, 1))
