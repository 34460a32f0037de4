"""Data: lists, clip sampling, video readers, transforms, datasets, the demo set.

The names below are imported from their modules on first use, so that importing one light
module of the package (lists, settings, the demo spec) does not import torch with the
datasets and transforms.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "BadVideoLog": "dataset",
    "TooManyBadVideos": "dataset",
    "VideoClipDataset": "dataset",
    "DataListError": "lists",
    "VideoRecord": "lists",
    "read_data_list": "lists",
    "VideoReadError": "readers",
    "open_video": "readers",
    "read_frames": "readers",
    "ClipSampler": "sampling",
    "DataSettings": "settings",
    "EvalClipTransform": "transforms",
    "FinetuneClipTransform": "transforms",
    "MultiScaleCropTransform": "transforms",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'video_mae.data' has no attribute {name!r}")
