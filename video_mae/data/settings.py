"""The ``data`` config group as a typed object."""

from __future__ import annotations

from dataclasses import dataclass

from ..models.mae import IMAGENET_MEAN, IMAGENET_STD
from .demo import DemoSpec, ensure_demo_dataset
from .lists import VideoRecord, read_data_list
from .readers import resolve_backend


@dataclass(frozen=True)
class DataSettings:
    """What to read and how to turn it into clips.

    With ``demo`` set and ``train_list`` unset, the built-in demo dataset is used
    (generated on first use). ``root``: folder that relative paths in the lists
    resolve against (default: each list's own folder).
    """

    name: str
    train_list: str | None = None
    val_list: str | None = None
    root: str | None = None
    demo: DemoSpec | None = None
    num_frames: int = 16
    sampling_rate: int = 4
    crop_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: bool = False
    reader: str = "auto"
    num_workers: int = 4
    pin_memory: bool = True
    clips_per_video: int = 1
    max_retries: int = 10
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        resolve_backend(self.reader)  # fails early on a bad name
        if self.train_list is None and self.demo is None:
            raise ValueError("data.train_list is not set (give a data list, or use data=demo)")
        if self.crop_size < 1 or self.num_workers < 0:
            raise ValueError(f"data.crop_size must be >= 1 and data.num_workers >= 0, got {self.crop_size}, {self.num_workers}")

    def records(self) -> tuple[list[VideoRecord], list[VideoRecord] | None]:
        """(train records, val records or None), generating the demo data if needed."""
        if self.train_list is None:
            demo = ensure_demo_dataset(self.demo)
            return read_data_list(demo.train_list, self.root), read_data_list(demo.val_list, self.root)
        val = read_data_list(self.val_list, self.root) if self.val_list else None
        return read_data_list(self.train_list, self.root), val
