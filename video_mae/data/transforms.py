"""Clip transforms: uint8 frames [T, H, W, 3] -> normalised float clips.

Training transforms return one clip [C, T, H, W]; the evaluation transform returns
its spatial views [V, C, T, H, W]. Every random choice (crop box, flip, RandAugment
operations, erased box) is drawn once per clip and applied to all of its frames,
so motion inside a clip is never distorted by per-frame jitter. Randomness comes
from a ``numpy.random.Generator`` passed in by the dataset, so a seeded run sees
the same augmentations again after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..seeding import seeded_global_rng

# (uint8 frames [T, H, W, 3], generator) -> [C, T, H, W] clip or [V, C, T, H, W] views
ClipTransform = Callable[[np.ndarray, np.random.Generator], torch.Tensor]

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
    """clip: uint8 [T, C, h, w] -> uint8 [T, C, *size], bilinear with antialiasing
    (close to PIL's bilinear, which VideoMAE's loaders use). Resizing the uint8
    frames (PyTorch's channels-last fast path) costs about a tenth of resizing
    float ones; the result differs by rounding only."""
    if tuple(clip.shape[-2:]) == size:
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)


class ClipNormalizer:
    """Normalises uint8 clips [..., C, T, H, W] where they are used (on the GPU, after a
    transfer 4x smaller than float clips); float clips pass through unchanged."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1) / std_t

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dtype != torch.uint8:
            return clips
        scale, shift = self.scale.to(clips.device), self.shift.to(clips.device)
        return clips.float().mul_(scale).add_(shift)


class _Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float], enabled: bool = True) -> None:
        self.enabled = enabled
        if len(mean) != len(std):
            raise ValueError(f"data.mean and data.std differ in length: {list(mean)} vs {list(std)}")
        if any(value <= 0 for value in std):
            raise ValueError(f"data.std must be positive, got {list(std)}")
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
        # (x / 255 - mean) / std as one multiply and one add.
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1) / std_t

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """uint8 [T, C, H, W] -> normalised, contiguous float [C, T, H, W] (one copy into a
        fresh tensor, then in place), or contiguous uint8 [C, T, H, W] when disabled."""
        if not self.enabled:
            return clip.permute(1, 0, 2, 3).contiguous()
        out = torch.empty(clip.shape[1], clip.shape[0], *clip.shape[2:], dtype=torch.float32)
        out.copy_(clip.permute(1, 0, 2, 3))
        return out.mul_(self.scale).add_(self.shift)


def _as_tchw(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] as a uint8 [T, 3, H, W] view (channels-last memory):
    crops are views, so only the pixels a clip keeps are ever copied or converted."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [T, H, W, 3], got {list(frames.shape)}")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


class MultiScaleCropTransform:
    """Pretraining augmentation (VideoMAE): multi-scale crop, resize to ``crop_size``,
    optional horizontal flip, normalise (or, with ``normalize=False``, uint8 clips for
    a :class:`ClipNormalizer` on the device).

    VideoMAE pretrains without flips; leave ``flip`` off for data whose labels
    depend on left/right (SSv2, the demo dataset) in any case.
    """

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        flip: bool = False,
        normalize: bool = True,
    ) -> None:
        if not scales or any(not 0 < scale <= 1 for scale in scales):
            raise ValueError(f"augment.scales must be in (0, 1], got {list(scales)}")
        self.crop_size = crop_size
        self.scales = tuple(scales)
        self.max_distort = max_distort
        self.flip = flip
        self.normalize = _Normalize(mean, std, normalize)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = _as_tchw(frames)
        top, left, h, w = multi_scale_crop_box(clip.shape[-2], clip.shape[-1], self.crop_size, self.scales, self.max_distort, rng)
        clip = _resize(clip[..., top : top + h, left : left + w], (self.crop_size, self.crop_size))
        if self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        return self.normalize(clip)


def random_resized_crop_box(
    height: int,
    width: int,
    scale: Sequence[float],
    ratio: Sequence[float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering a ``scale`` fraction of the area
    with aspect ratio in ``ratio`` (log-uniform), as torchvision's RandomResizedCrop;
    after 10 failed draws, the largest centred crop within ``ratio``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, round(width / min(ratio))
    elif aspect > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


class FinetuneClipTransform:
    """Fine-tuning augmentation (VideoMAE's recipe, per clip): random resized crop
    (area ``scale``, aspect ``ratio``) to ``crop_size``, optional flip, RandAugment
    (timm policy string, e.g. ``rand-m7-n4-mstd0.5-inc1``; the same operations on
    every frame), normalise, random erasing with probability ``random_erasing``
    (one box through all frames, per-pixel noise).

    The crop comes before RandAugment, as in timm's image pipeline, so the
    augmentation runs on ``crop_size`` frames rather than full-size ones.
    """

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (0.75, 4 / 3),
        flip: bool = True,
        rand_augment: str | None = "rand-m7-n4-mstd0.5-inc1",
        random_erasing: float = 0.25,
    ) -> None:
        from timm.data.auto_augment import rand_augment_transform
        from timm.data.random_erasing import RandomErasing

        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"augment.scale must be 0 < min <= max <= 1, got {list(scale)}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"augment.ratio must be 0 < min <= max, got {list(ratio)}")
        if not 0 <= random_erasing <= 1:
            raise ValueError(f"augment.random_erasing must be a probability, got {random_erasing}")
        self.crop_size = crop_size
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.flip = flip
        self.normalize = _Normalize(mean, std)
        self.rand_augment = None
        if rand_augment:
            hparams = {"translate_const": int(crop_size * 0.45), "img_mean": tuple(round(255 * m) for m in mean)}
            try:
                self.rand_augment = rand_augment_transform(rand_augment, hparams)
            except (AssertionError, KeyError, ValueError) as err:
                raise ValueError(f"augment.rand_augment={rand_augment!r} is not a timm RandAugment policy ({err})") from None
        self.erase = RandomErasing(probability=random_erasing, mode="pixel", device="cpu") if random_erasing > 0 else None

    def _augment_frames(self, clip: torch.Tensor, seed: int) -> torch.Tensor:
        from PIL import Image

        frames = clip.permute(0, 2, 3, 1).contiguous().numpy()
        out = []
        for frame in frames:
            with seeded_global_rng(seed):
                out.append(np.asarray(self.rand_augment(Image.fromarray(frame))))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = _as_tchw(frames)
        top, left, h, w = random_resized_crop_box(clip.shape[-2], clip.shape[-1], self.scale, self.ratio, rng)
        clip = _resize(clip[..., top : top + h, left : left + w], (self.crop_size, self.crop_size))
        if self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        if self.rand_augment is not None:
            clip = self._augment_frames(clip, int(rng.integers(2**31)))
        clip = self.normalize(clip)
        if self.erase is not None:
            channels, frames_, height, width = clip.shape
            with seeded_global_rng(int(rng.integers(2**31))):
                clip = self.erase(clip.reshape(channels * frames_, height, width)).reshape(channels, frames_, height, width)
        return clip


class EvalClipTransform:
    """Resize the short side to ``short_side`` (default ``crop_size``), then take
    ``num_crops`` square crops of ``crop_size`` spread along the long side (one:
    the centre; three: start, centre, end, VideoMAE's protocol), normalise.
    Deterministic. Returns the views [num_crops, C, T, H, W]."""

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        short_side: int | None = None,
        num_crops: int = 1,
        normalize: bool = True,
    ) -> None:
        self.crop_size = crop_size
        self.short_side = short_side or crop_size
        if self.short_side < crop_size:
            raise ValueError(f"short_side={self.short_side} is smaller than crop_size={crop_size}")
        if num_crops < 1:
            raise ValueError(f"eval.num_crops must be at least 1, got {num_crops}")
        self.num_crops = num_crops
        self.normalize = _Normalize(mean, std, normalize)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = _as_tchw(frames)
        height, width = clip.shape[-2:]
        scale = self.short_side / min(height, width)
        size = (max(self.crop_size, round(height * scale)), max(self.crop_size, round(width * scale)))
        clip = _resize(clip, size)
        crop = self.crop_size
        # Crops move along the long side and are centred on the short one.
        along_height = size[0] > size[1]
        free = (size[0] if along_height else size[1]) - crop
        other = ((size[1] if along_height else size[0]) - crop) // 2
        offsets = [free // 2] if self.num_crops == 1 else np.linspace(0, free, self.num_crops).round().astype(int).tolist()
        views = []
        for offset in offsets:
            top, left = (offset, other) if along_height else (other, offset)
            views.append(self.normalize(clip[..., top : top + crop, left : left + crop]))
        return torch.stack(views)
