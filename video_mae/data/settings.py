"""The ``data`` config group as a typed object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config_types import check_types
from ..constants import IMAGENET_MEAN, IMAGENET_STD
from .demo import DemoSpec, ensure_demo_dataset
from .lists import VideoRecord, read_data_list
from .readers import check_backend_name
from .sampling import ClipSampler


@dataclass(frozen=True)
class DataSettings:
    """What to read and how to cut clips from it (augmentation is the task's ``augment``).

    With ``demo`` set and ``train_list`` unset, the built-in demo dataset is used
    (generated on first use). ``root``: folder that relative paths in the lists
    resolve against (default: each list's own folder). ``flip_invariant``: whether
    labels survive a horizontal flip (not for SSv2 or the demo: left/right motion
    is the label); fine-tuning flips only then. ``num_classes``: None means one
    more than the largest label of the training list. ``class_names``: a file
    with one class name per line, in label order, for reports. ``sampling``:
    ``stride`` (every ``sampling_rate`` frames) or ``segments`` (one frame per
    equal segment of the video, TSN-style). ``clips_per_video`` training clips come
    from one decode; they start within ``repeat_spread`` frames of each other (0: the
    same frames, differently augmented; None: anywhere in the video). A video whose
    decode has not returned after ``decode_timeout_s`` counts as unreadable; a loader
    batch that takes longer than ``timeout_s`` stops the run instead of hanging it.
    ``decode_short_side``: frames whose short side is 1.5x that or more are decoded
    scaled down to it (less colour conversion and memory for large videos; None:
    full size). It may not be below ``crop_size``, which would blur every crop.
    ``cache_decoded``: training keeps every decoded video in memory and decodes it only
    once, for small sets (the demo) with ``num_workers=0``, where the cache outlives the epoch.
    """

    name: str
    train_list: str | None = None
    val_list: str | None = None
    root: str | None = None
    demo: DemoSpec | None = None
    num_frames: int = 16
    sampling_rate: int = 4
    sampling: str = "stride"
    crop_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    flip_invariant: bool = True
    num_classes: int | None = None
    class_names: str | None = None
    reader: str = "auto"
    num_workers: int = 4
    pin_memory: bool = True
    clips_per_video: int = 1
    repeat_spread: int | None = 0
    max_retries: int = 10
    decode_timeout_s: float | None = 120.0
    timeout_s: float = 600.0
    decode_short_side: int | None = None
    cache_decoded: bool = False

    def __post_init__(self) -> None:
        check_types(self, "data")
        check_backend_name(self.reader)  # fails early on a bad name; whether it is usable here, when a dataset is built
        if self.reader == "torchcodec-cuda" and self.num_workers > 0:
            raise ValueError(
                f"data.reader=torchcodec-cuda decodes in the main process (CUDA cannot start in forked loader workers): "
                f"set data.num_workers=0 (got {self.num_workers})"
            )
        ClipSampler(self.num_frames, self.sampling_rate, self.sampling)  # fails early on bad values
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"data.num_classes must be at least 1, got {self.num_classes}")
        if self.crop_size < 1 or self.num_workers < 0:
            raise ValueError(f"data.crop_size must be >= 1 and data.num_workers >= 0, got {self.crop_size}, {self.num_workers}")
        if self.decode_short_side is not None and self.decode_short_side < self.crop_size:
            raise ValueError(
                f"data.decode_short_side ({self.decode_short_side}) is below data.crop_size ({self.crop_size}); "
                "frames would be scaled up again for every crop"
            )

    def sampler(self) -> ClipSampler:
        return ClipSampler(self.num_frames, self.sampling_rate, self.sampling)

    def classes(self, records: list[VideoRecord]) -> list[str]:
        """Class names in label order: from ``class_names`` (or the demo's), else "0", "1", ..."""
        count = self.num_classes if self.num_classes is not None else max(r.label for r in records) + 1
        path = self.class_names
        if path is None and self.train_list is None and self.demo is not None:
            return list(self.demo.classes)
        if path is None:
            return [str(i) for i in range(count)]
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(names) != count:
            raise ValueError(f"{path}: {len(names)} class names, but data.num_classes is {count}")
        return names

    def records(self) -> tuple[list[VideoRecord], list[VideoRecord] | None]:
        """(train records, val records or None), generating the demo data if needed."""
        if self.train_list is None and self.demo is None:
            raise ValueError("data.train_list is not set (give a data list, or use data=demo)")
        if self.train_list is None:
            demo = ensure_demo_dataset(self.demo)
            return read_data_list(demo.train_list, self.root), read_data_list(demo.val_list, self.root)
        val = read_data_list(self.val_list, self.root) if self.val_list else None
        return read_data_list(self.train_list, self.root), val


def data_settings_from_config(config: dict) -> DataSettings:
    """The DataSettings a checkpoint stored as a plain dict (what Hydra would instantiate
    from it, for code that runs without Hydra: the Python API)."""
    fields = {k: v for k, v in config.items() if k != "_target_"}
    demo = fields.get("demo")
    if isinstance(demo, dict):
        fields["demo"] = DemoSpec(**{k: v for k, v in demo.items() if k != "_target_"})
    return DataSettings(**fields)
