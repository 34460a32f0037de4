"""Data: lists, clip sampling, video readers, transforms, datasets, the demo set."""

from .dataset import BadVideoLog, TooManyBadVideos, VideoClipDataset
from .lists import DataListError, VideoRecord, read_data_list
from .readers import VideoReadError, open_video, read_frames
from .sampling import ClipSampler
from .settings import DataSettings
from .transforms import EvalClipTransform, FinetuneClipTransform, MultiScaleCropTransform

__all__ = [
    "BadVideoLog",
    "ClipSampler",
    "DataListError",
    "DataSettings",
    "EvalClipTransform",
    "FinetuneClipTransform",
    "MultiScaleCropTransform",
    "TooManyBadVideos",
    "VideoClipDataset",
    "VideoReadError",
    "VideoRecord",
    "open_video",
    "read_data_list",
    "read_frames",
]
