"""Dataset of clips from a data list, with bounded replacement of broken videos.

Each item decodes one video once and cuts ``clips_per_video`` clips from it
(repeated sampling: decoding costs more than the model step, so one decode
feeds several clips). In training the clips start within ``repeat_spread`` frames
of each other (0: the same frames, augmented differently, as VideoMAE; None:
anywhere in the video, which decodes more). A video that cannot be read is written to the bad-video
log with its reason; in training it is replaced by another, randomly chosen
video at most ``max_retries`` times, after which the error is raised. In
evaluation nothing is ever replaced: the error is raised at once.

All randomness of an item comes from ``(seed, epoch, index, attempt)``, so the
same epoch yields the same clips whatever the number of workers and after a resume.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from .lists import VideoRecord
from .readers import VideoReadError, open_video, resolve_backend
from .sampling import ClipSampler
from .transforms import ClipTransform

T = TypeVar("T")


class BadVideoLog:
    """Appends ``path<TAB>reason`` lines to a file (``bad_videos.txt``).

    Each line is one ``write`` on a file opened with O_APPEND, so lines from
    several DataLoader worker processes do not interleave.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None

    def record(self, video: str, reason: str) -> None:
        if self.path is None:
            return
        line = f"{video}\t{reason}\n".encode("utf-8", errors="replace")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def run_with_deadline(fn: Callable[[], T], timeout_s: float | None, path: str) -> T:
    """``fn()``, or VideoReadError("timeout: ...") when it has not returned after
    ``timeout_s`` seconds. It runs in a daemon thread: a decoder stuck in native code
    cannot be interrupted, but the worker is free to go on with other videos."""
    if timeout_s is None or timeout_s <= 0:
        return fn()
    box: dict = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="video-decode").start()
    if not done.wait(timeout_s):
        raise VideoReadError(path, f"timeout: no frames after {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class TooManyBadVideos(RuntimeError):
    """Training hit ``max_retries`` unreadable videos in a row for one item."""


class VideoClipDataset(Dataset):
    """Items are dicts:

    video: [clips_per_video x views, C, T, H, W] as the transform returns it per clip
           (views: training transforms return one): uint8 pixels from pretraining's
           crop (normalised later, on the device), float normalised clips otherwise
    label: int (the record's label)
    row: int (the record's row in its data list)
    replaced: int (how many unreadable videos were skipped to produce this item)
    spans: float [clips_per_video, 2], each clip's first and last frame in seconds

    In evaluation (``train=False``) an unreadable video is never replaced: it raises,
    or with ``report_unreadable`` comes back as ``video=None`` and ``failed=<reason>``
    for :func:`~video_mae.data.loader.collate_reporting_failures` to set aside.
    ``decode_short_side``: frames are decoded scaled down to this short side.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        sampler: ClipSampler,
        transform: ClipTransform,
        train: bool,
        backend: str = "auto",
        clips_per_video: int = 1,
        repeat_spread: int | None = 0,
        max_retries: int = 10,
        seed: int = 0,
        bad_videos: BadVideoLog | None = None,
        report_unreadable: bool = False,
        decode_timeout_s: float | None = None,
        decode_short_side: int | None = None,
        cache_decoded: bool = False,
    ) -> None:
        if not records:
            raise ValueError("the dataset has no videos")
        if clips_per_video < 1:
            raise ValueError(f"data.clips_per_video must be at least 1, got {clips_per_video}")
        if max_retries < 0:
            raise ValueError(f"data.max_retries must be >= 0, got {max_retries}")
        self.records = list(records)
        self.sampler = sampler
        self.transform = transform
        self.train = train
        resolve_backend(backend)  # a reader that cannot run here fails now, not once per video
        self.backend = backend
        self.decode_short_side = decode_short_side
        self.clips_per_video = clips_per_video
        self.repeat_spread = repeat_spread
        self.max_retries = max_retries
        self.seed = seed
        self.bad_videos = bad_videos or BadVideoLog(None)
        self.report_unreadable = report_unreadable
        self.decode_timeout_s = decode_timeout_s
        self.cache_decoded = cache_decoded
        # path -> (every frame, frame rate): filled on first read. It lives in the process
        # that decodes, so it pays with num_workers=0 (or persistent workers) on small sets.
        self._decoded: dict[str, tuple[np.ndarray, float]] = {}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call before creating the epoch's DataLoader iterator (workers copy the dataset then)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        attempt, current = 0, index
        while True:
            record = self.records[current]
            rng = np.random.default_rng([self.seed, self.epoch, index, attempt])
            try:
                clips, spans = run_with_deadline(partial(self.load_clips, record, rng), self.decode_timeout_s, record.path)
            except VideoReadError as err:
                self.bad_videos.record(err.path, err.reason)
                if not self.train and self.report_unreadable:
                    return {"video": None, "label": record.label, "row": record.row, "failed": err.reason}
                if not self.train:
                    raise
                if attempt >= self.max_retries:
                    raise TooManyBadVideos(
                        f"{attempt + 1} unreadable videos in a row while loading item {index} "
                        f"(data.max_retries={self.max_retries}); last: {err}"
                    ) from None
                attempt += 1
                current = int(rng.integers(len(self.records)))
                continue
            return {"video": clips, "label": record.label, "row": record.row, "replaced": attempt, "spans": spans}

    def frame_range(self, record: VideoRecord, num_frames: int, fps: float) -> tuple[int, int]:
        """[first, stop) frames of the record's segment (the whole video without start/end)."""
        if record.start is None and record.end is None:
            return 0, num_frames
        if fps <= 0:
            raise VideoReadError(record.path, "start/end given but the frame rate is unknown")
        first = int(record.start * fps) if record.start is not None else 0
        stop = min(num_frames, math.ceil(record.end * fps)) if record.end is not None else num_frames
        if first >= stop:
            raise VideoReadError(record.path, f"segment {record.start}-{record.end}s holds no frames ({num_frames} at {fps:g} fps)")
        return first, stop

    def _pick_clips(self, record: VideoRecord, num_frames: int, fps: float, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
        """The clips' frame indices within the record's segment, and the segment's first frame."""
        first, stop = self.frame_range(record, num_frames, fps)
        available = stop - first
        if self.train:
            return self.sampler.random_clips(available, self.clips_per_video, rng, self.repeat_spread), first
        return self.sampler.uniform_clips(available, self.clips_per_video), first

    def load_clips(self, record: VideoRecord, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Decodes the record once; returns its clips' views [k x views, C, T, H, W] (the transform's dtype),
        and each clip's first and last frame in seconds [k, 2] (frame indices without a frame rate)."""
        if self.cache_decoded:
            if record.path not in self._decoded:
                with open_video(record.path, self.backend, self.decode_short_side) as video:
                    every = video.get_frames(list(range(video.info.num_frames)))
                    self._decoded[record.path] = (every, video.info.fps)
            every, fps = self._decoded[record.path]
            clips, first = self._pick_clips(record, len(every), fps, rng)
            wanted = np.unique(np.concatenate(clips)) + first
            frames = every[wanted]
        else:
            with open_video(record.path, self.backend, self.decode_short_side) as video:
                fps = video.info.fps
                clips, first = self._pick_clips(record, video.info.num_frames, fps, rng)
                # One decode for the union of all clips' frames.
                wanted = np.unique(np.concatenate(clips)) + first
                frames = video.get_frames(wanted.tolist())
        position = {int(frame): i for i, frame in enumerate(wanted)}
        out = []
        for clip in clips:
            take = [position[int(frame) + first] for frame in clip]
            # A run of consecutive positions is a view; other selections copy (whole frames).
            contiguous = all(b - a == 1 for a, b in zip(take, take[1:]))
            views = self.transform(frames[take[0] : take[-1] + 1] if contiguous else frames[take], rng)
            out.extend(views if views.dim() == 5 else [views])
        spans = torch.tensor([[clip[0] + first, clip[-1] + first] for clip in clips], dtype=torch.float64)
        return torch.stack(out), spans / fps if fps > 0 else spans
