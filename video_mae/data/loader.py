"""Per-epoch DataLoaders with a seeded order that can start part-way through an epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from .dataset import BadVideoLog, VideoClipDataset
from .lists import VideoRecord
from .settings import DataSettings
from .transforms import ClipTransform


class EpochSampler(Sampler[int]):
    """The indices of one epoch: a permutation drawn from ``(seed, epoch)`` (or the
    identity without ``shuffle``), from position ``start`` on; with several ranks,
    rank r takes every ``world_size``-th index from ``start + r``, so a global batch
    of ``batch_size x world_size`` holds the same videos on any number of ranks.
    Resuming at ``start = batches_done x batch_size x world_size`` replays exactly
    the rest of the epoch."""

    def __init__(self, size: int, seed: int, epoch: int, shuffle: bool = True, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= start <= size:
            raise ValueError(f"start={start} outside [0, {size}]")
        self.size = size
        self.seed = seed
        self.epoch = epoch
        self.shuffle = shuffle
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.size)

    def __iter__(self) -> Iterator[int]:
        mine = self.order()[self.start + self.rank :: self.world_size]
        return iter(mine[: len(self)].tolist())

    def __len__(self) -> int:
        # Every rank gets the same count; the ragged tail of the epoch is dropped.
        return (self.size - self.start) // self.world_size


def _worker_init(_: int) -> None:
    # Each worker decodes and resizes one item at a time; intra-op threads would
    # only oversubscribe the cores the other workers are using.
    torch.set_num_threads(1)


def collate_reporting_failures(items: list[dict]) -> dict:
    """Batches the readable items and lists the unreadable ones under ``failed``
    as (row, reason) pairs; ``video`` is None when no item of the batch was readable."""
    good = [item for item in items if item.get("video") is not None]
    failed = [(int(item["row"]), item["failed"]) for item in items if item.get("video") is None]
    batch = default_collate([{k: v for k, v in item.items() if k != "failed"} for item in good]) if good else {"video": None}
    batch["failed"] = failed
    return batch


def make_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    drop_last: bool = True,
    timeout_s: float = 0.0,
    collate_fn: Callable[[list], dict] | None = None,
) -> DataLoader:
    """A DataLoader that takes its order from ``sampler``. With workers, a batch
    that takes longer than ``timeout_s`` seconds (0: no limit) raises instead of hanging."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        timeout=timeout_s if num_workers > 0 else 0.0,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        collate_fn=collate_fn,
        # A fixed generator keeps the loader from drawing its worker seeds from the
        # global RNG, which would otherwise differ between a straight and a resumed run.
        generator=torch.Generator().manual_seed(0),
    )


def epoch_loaders(
    dataset: Dataset,
    batch_size: int,
    seed: int,
    num_workers: int,
    pin_memory: bool = False,
    timeout_s: float = 0.0,
    rank: int = 0,
    world_size: int = 1,
) -> Callable[[int, int], DataLoader]:
    """A factory ``(epoch, start_batch) -> DataLoader`` over a shuffled training set
    (whole batches only), for :class:`~video_mae.engine.train.Trainer`. The dataset's
    epoch is set before the workers copy it."""

    def loader(epoch: int, start_batch: int) -> DataLoader:
        dataset.set_epoch(epoch)
        start = start_batch * batch_size * world_size
        order = EpochSampler(len(dataset), seed, epoch, shuffle=True, start=start, rank=rank, world_size=world_size)
        return make_loader(dataset, order, batch_size, num_workers, pin_memory=pin_memory, timeout_s=timeout_s)

    return loader


def training_dataset(
    records: Sequence[VideoRecord],
    data: DataSettings,
    augment: ClipTransform,
    seed: int = 0,
    bad_videos: BadVideoLog | None = None,
) -> VideoClipDataset:
    """The training dataset as ``data`` (a :class:`~video_mae.data.settings.DataSettings`)
    describes it: random clips, ``data.clips_per_video`` per decode, unreadable videos
    replaced at most ``data.max_retries`` times and logged to ``bad_videos``."""
    return VideoClipDataset(
        records,
        data.sampler(),
        augment,
        train=True,
        backend=data.reader,
        clips_per_video=data.clips_per_video,
        repeat_spread=data.repeat_spread,
        max_retries=data.max_retries,
        seed=seed,
        bad_videos=bad_videos,
        decode_timeout_s=data.decode_timeout_s,
        decode_short_side=data.decode_short_side,
        cache_decoded=data.cache_decoded,
    )


def evaluation_dataset(
    records: Sequence[VideoRecord],
    data: DataSettings,
    transform: ClipTransform,
    clips_per_video: int = 1,
    bad_videos: BadVideoLog | None = None,
    reader: str | None = None,
    report_unreadable: bool = True,
) -> VideoClipDataset:
    """The evaluation view of ``records``: each video decoded once for its clips, in
    list order, never replaced when unreadable: reported under ``failed``, or with
    ``report_unreadable=False`` raised as the reader's error. ``data`` is a
    :class:`~video_mae.data.settings.DataSettings`; ``reader`` overrides ``data.reader``."""
    return VideoClipDataset(
        records,
        data.sampler(),
        transform,
        train=False,
        backend=reader or data.reader,
        clips_per_video=clips_per_video,
        bad_videos=bad_videos,
        report_unreadable=report_unreadable,
        decode_timeout_s=data.decode_timeout_s,
        decode_short_side=data.decode_short_side,
    )


def evaluation_loader(
    records: Sequence[VideoRecord],
    data: DataSettings,
    transform: ClipTransform,
    clips_per_video: int,
    batch_size: int,
    pin_memory: bool,
    bad_videos: BadVideoLog | None = None,
) -> DataLoader:
    """:func:`evaluation_dataset` batched in list order."""
    dataset = evaluation_dataset(records, data, transform, clips_per_video, bad_videos)
    return make_loader(
        dataset,
        EpochSampler(len(dataset), seed=0, epoch=0, shuffle=False),
        batch_size,
        data.num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        timeout_s=data.timeout_s,
        collate_fn=collate_reporting_failures,
    )
