"""Which frames make a clip: pure functions of the video length and a seeded generator.

A clip is ``num_frames`` frames taken every ``sampling_rate`` frames, so it spans
``(num_frames - 1) * sampling_rate + 1`` frames of the video.

Short videos (the documented rule, applied in this order):

1. If the video has at least ``span`` frames, the clip uses ``sampling_rate``.
2. Else, if it has at least ``num_frames`` frames, the stride shrinks to the
   largest one that fits, ``(available - 1) // (num_frames - 1)``, so the clip
   still covers as much of the video as it can without repeating a frame.
3. Else every frame is used, in order, each repeated (nearly) equally often:
   frame ``i * available // num_frames`` for clip position ``i``.

A video with no frames is an error, never a clip.

``mode="segments"`` (TSN-style, VideoMAE's choice for Something-Something V2)
ignores ``sampling_rate``: the video is cut into ``num_frames`` equal segments and
a clip takes one frame from each, a random one in training, and for the k-th of K
evaluation clips the one at fraction (k + 0.5) / K of every segment. Videos with
fewer frames than ``num_frames`` follow rule 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("stride", "segments")


@dataclass(frozen=True)
class ClipSampler:
    num_frames: int
    sampling_rate: int
    mode: str = "stride"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"data.sampling must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.num_frames < 1:
            raise ValueError(f"data.num_frames must be at least 1, got {self.num_frames}")
        if self.sampling_rate < 1:
            raise ValueError(f"data.sampling_rate must be at least 1, got {self.sampling_rate}")

    @property
    def span(self) -> int:
        """Frames of the video a full-stride clip covers."""
        return (self.num_frames - 1) * self.sampling_rate + 1

    def stride_for(self, available: int) -> int:
        """The stride used for a video of ``available`` frames (rules 1 and 2);
        0 means rule 3 (frames repeat)."""
        if available < 1:
            raise ValueError("a video with no frames has no clips")
        if available >= self.span:
            return self.sampling_rate
        if available < self.num_frames:
            return 0
        # num_frames > 1 here: with one frame, span == 1 <= available.
        return (available - 1) // (self.num_frames - 1)

    def clip_length(self, available: int) -> int:
        """Frames of the video one clip covers, for a video of ``available`` frames."""
        stride = self.stride_for(available)
        return available if stride == 0 else (self.num_frames - 1) * stride + 1

    def clip_at(self, start: int, available: int) -> np.ndarray:
        """Frame indices of the clip starting at ``start`` (0 <= start <= available - clip_length)."""
        stride = self.stride_for(available)
        if stride == 0:
            return np.arange(self.num_frames, dtype=np.int64) * available // self.num_frames
        last_start = available - self.clip_length(available)
        if not 0 <= start <= last_start:
            raise ValueError(f"clip start {start} outside [0, {last_start}] for a video of {available} frames")
        return start + np.arange(self.num_frames, dtype=np.int64) * stride

    def _segment_clip(self, available: int, fractions: np.ndarray) -> np.ndarray:
        """One frame per segment, at ``fractions`` (in [0, 1)) of each segment."""
        if available < self.num_frames:
            return np.arange(self.num_frames, dtype=np.int64) * available // self.num_frames
        bounds = np.linspace(0, available, self.num_frames + 1)
        frames = np.floor(bounds[:-1] + fractions * np.diff(bounds)).astype(np.int64)
        return np.minimum(frames, available - 1)

    def random_clips(self, available: int, count: int, rng: np.random.Generator, spread: int | None = None) -> list[np.ndarray]:
        """``count`` clips for training. With ``spread`` None, each starts anywhere (uniformly
        random); with ``spread`` s, all start within s frames of one random window, so
        one short decode serves them all (s = 0: the same frames for every clip, to
        be augmented differently, VideoMAE's repeated sampling)."""
        if self.mode == "segments":
            if available < 1:
                raise ValueError("a video with no frames has no clips")
            return [self._segment_clip(available, rng.random(self.num_frames)) for _ in range(count)]
        last_start = available - self.clip_length(available)
        if spread is None or count == 1:
            return [self.clip_at(int(rng.integers(0, last_start + 1)), available) for _ in range(count)]
        window = min(max(spread, 0), last_start)
        base = int(rng.integers(0, last_start - window + 1))
        return [self.clip_at(base + int(rng.integers(0, window + 1)), available) for _ in range(count)]

    def uniform_clips(self, available: int, count: int) -> list[np.ndarray]:
        """``count`` clips with evenly spaced starts, the first at the beginning and the
        last at the end of the video; a single clip is centred (evaluation)."""
        if self.mode == "segments":
            if available < 1:
                raise ValueError("a video with no frames has no clips")
            return [self._segment_clip(available, np.full(self.num_frames, (k + 0.5) / count)) for k in range(count)]
        last_start = available - self.clip_length(available)
        if count == 1:
            return [self.clip_at(last_start // 2, available)]
        starts = np.linspace(0, last_start, count).round().astype(np.int64)
        return [self.clip_at(int(start), available) for start in starts]
