"""Clip transforms: uint8 frames [T, H, W, 3] -> normalised float clip [C, T, H, W].

Every random choice (crop box, flip) is drawn once per clip and applied to all of
its frames, so motion inside a clip is never distorted by per-frame jitter.
Randomness comes from a ``numpy.random.Generator`` passed in by the dataset, so a
seeded run sees the same crops again after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Fixed crop positions, in quarters of the free space (x, y): corners, centre,
# edge centres and the four quarter points (VideoMAE / TSN "more_fix_crop").
FIXED_OFFSETS = (
    (0, 0), (4, 0), (0, 4), (4, 4), (2, 2),
    (0, 2), (4, 2), (2, 4), (2, 0),
    (1, 1), (3, 1), (1, 3), (3, 3),
)  # fmt: skip


def multi_scale_crop_box(
    height: int,
    width: int,
    crop_size: int,
    scales: Sequence[float],
    max_distort: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) of a multi-scale crop.

    Side lengths are ``scale * min(height, width)`` for scales from ``scales``;
    height and width take scales whose positions in the list differ by at most
    ``max_distort`` (mild aspect-ratio changes). A side within 3 pixels of
    ``crop_size`` snaps to it. The box sits at one of 13 fixed positions.
    """
    base = min(height, width)
    sides = [int(base * scale) for scale in scales]
    sides = [crop_size if abs(side - crop_size) < 3 else side for side in sides]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    crop_h, crop_w = min(max(crop_h, 1), height), min(max(crop_w, 1), width)
    qx, qy = FIXED_OFFSETS[int(rng.integers(len(FIXED_OFFSETS)))]
    left = (width - crop_w) * qx // 4
    top = (height - crop_h) * qy // 4
    return top, left, crop_h, crop_w


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """clip: float [T, C, h, w] -> [T, C, *size], bilinear with antialiasing
    (close to PIL's bilinear, which VideoMAE's loaders use)."""
    if tuple(clip.shape[-2:]) == size:
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)


class _Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"data.mean and data.std differ in length: {list(mean)} vs {list(std)}")
        if any(value <= 0 for value in std):
            raise ValueError(f"data.std must be positive, got {list(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """float [T, C, H, W] in 0..255 -> normalised [C, T, H, W]."""
        return (clip.permute(1, 0, 2, 3) / 255.0 - self.mean) / self.std


def _to_float_tchw(frames: np.ndarray) -> torch.Tensor:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [T, H, W, 3], got {list(frames.shape)}")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()


class TrainClipTransform:
    """Multi-scale crop, resize to ``crop_size``, optional horizontal flip, normalise.

    Leave ``flip`` off for data whose labels depend on left/right (SSv2, the demo
    dataset), where a flip turns one class into another.
    """

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        flip: bool = False,
    ) -> None:
        if not scales or any(not 0 < scale <= 1 for scale in scales):
            raise ValueError(f"data.scales must be in (0, 1], got {list(scales)}")
        self.crop_size = crop_size
        self.scales = tuple(scales)
        self.max_distort = max_distort
        self.flip = flip
        self.normalize = _Normalize(mean, std)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = _to_float_tchw(frames)
        top, left, h, w = multi_scale_crop_box(
            clip.shape[-2], clip.shape[-1], self.crop_size, self.scales, self.max_distort, rng
        )
        clip = _resize(clip[..., top : top + h, left : left + w], (self.crop_size, self.crop_size))
        if self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        return self.normalize(clip)


class EvalClipTransform:
    """Resize the short side to ``short_side`` (default ``crop_size``), centre crop
    ``crop_size`` x ``crop_size``, normalise. Deterministic."""

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        short_side: int | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.short_side = short_side or crop_size
        if self.short_side < crop_size:
            raise ValueError(f"short_side={self.short_side} is smaller than crop_size={crop_size}")
        self.normalize = _Normalize(mean, std)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = _to_float_tchw(frames)
        height, width = clip.shape[-2:]
        scale = self.short_side / min(height, width)
        size = (max(self.crop_size, round(height * scale)), max(self.crop_size, round(width * scale)))
        clip = _resize(clip, size)
        top = (size[0] - self.crop_size) // 2
        left = (size[1] - self.crop_size) // 2
        clip = clip[..., top : top + self.crop_size, left : left + self.crop_size]
        return self.normalize(clip)
