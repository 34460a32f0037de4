"""Running a model over every view of a batch of videos, a few clips at a time."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .device import autocast


def forward_views(
    fn: Callable[[torch.Tensor], torch.Tensor],
    views: torch.Tensor,
    device: torch.device,
    precision: str,
    clips_per_forward: int,
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``fn`` over views [B, V, C, T, H, W], ``clips_per_forward`` clips per call (which
    bounds device memory whatever the number of views): float32 [B, V, ...]. uint8
    clips are normalised on the device by ``normalizer``, which they require."""
    count, per_video = views.shape[:2]
    outputs = []
    for chunk in views.flatten(0, 1).split(clips_per_forward):
        chunk = chunk.to(device, non_blocking=True)
        if normalizer is not None:
            chunk = normalizer(chunk)
        elif chunk.dtype == torch.uint8:
            raise ValueError("uint8 clips need a normalizer (ClipNormalizer(mean, std))")
        with autocast(device, precision):
            outputs.append(fn(chunk).float())
    result = torch.cat(outputs)
    return result.reshape(count, per_video, *result.shape[1:])
