"""The built-in demo dataset: short synthetic H.264 videos whose class is motion.

Eight classes in four pairs; each class of a pair is the other played backwards
(a square moving right / left, down / up, a disk growing / shrinking, a bar
turning clockwise / counter-clockwise). A frame and its time-reversed twin come
from the same distribution, so no single frame tells the classes of a pair apart:
a model has to use motion over time. Shapes, colours, sizes, speeds, positions
and a striped background are random per video.

The files are generated deterministically (fixed seeds, single-threaded x264)
on first use into a cache folder, written to a temporary folder and renamed into
place, so an interrupted or concurrent generation never leaves a half-written set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..validation import check_types
from .encode import write_mp4
from .lists import write_data_list

CLASSES = (
    "square_right",
    "square_left",
    "square_down",
    "square_up",
    "disk_growing",
    "disk_shrinking",
    "bar_clockwise",
    "bar_counterclockwise",
)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DemoSpec:
    """Size of the demo dataset and where it is cached.

    cache_dir: None -> $VMAE_CACHE, else $XDG_CACHE_HOME/video_mae, else ~/.cache/video_mae.
    """

    cache_dir: str | None = None
    videos_per_class: int = 40
    val_videos_per_class: int = 10
    num_frames: int = 40
    height: int = 72
    width: int = 96
    fps: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        check_types(self, "data.demo")
        if self.videos_per_class < 1 or self.val_videos_per_class < 1:
            raise ValueError("data.demo.videos_per_class and data.demo.val_videos_per_class must be at least 1")
        if self.height % 2 or self.width % 2 or min(self.height, self.width) < 16:
            raise ValueError(f"data.demo height/width must be even and at least 16, got {self.height}x{self.width}")
        if self.num_frames < 2:
            raise ValueError(f"data.demo.num_frames must be at least 2, got {self.num_frames}")


@dataclass(frozen=True)
class DemoDataset:
    root: Path
    train_list: Path
    val_list: Path
    classes: tuple[str, ...]


def default_cache_dir() -> Path:
    if os.environ.get("VMAE_CACHE"):
        return Path(os.environ["VMAE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "video_mae"


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static tinted grating (random orientation, wavelength and phase): regular
    enough that a masked autoencoder can infer hidden parts from visible ones."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, np.pi)
    wavelength = rng.uniform(10, 24)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / wavelength + phase)
    tint = rng.uniform(0.15, 0.45, size=3)
    stripe = rng.uniform(0.08, 0.2, size=3)
    return (tint + stripe * wave[..., None]).clip(0, 1)


def _coverage(distance_inside: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance (pixels, positive inside)."""
    return np.clip(0.5 + distance_inside, 0.0, 1.0)


def _forward_motion(kind: str, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """Coverage [T, H, W] of the shape for the 'forward' class of a pair."""
    t = np.linspace(0.0, 1.0, spec.num_frames)[:, None, None]
    yy, xx = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float64)
    yy, xx = yy[None], xx[None]
    if kind in ("right", "down"):
        side = rng.uniform(12, 20)
        along, across = (spec.width, spec.height) if kind == "right" else (spec.height, spec.width)
        travel = rng.uniform(0.45, 0.7) * (along - side)
        start = rng.uniform(side / 2, along - side / 2 - travel)
        cross = rng.uniform(side / 2, across - side / 2)
        pos = start + travel * t
        cx, cy = (pos, cross) if kind == "right" else (cross, pos)
        return _coverage(side / 2 - np.maximum(np.abs(xx - cx), np.abs(yy - cy)))
    if kind == "growing":
        small = min(spec.height, spec.width)
        r0, r1 = rng.uniform(0.05, 0.12) * small, rng.uniform(0.3, 0.45) * small
        cy = rng.uniform(0.4, 0.6) * spec.height
        cx = rng.uniform(0.4, 0.6) * spec.width
        radius = r0 + (r1 - r0) * t
        return _coverage(radius - np.hypot(xx - cx, yy - cy))
    if kind == "clockwise":
        small = min(spec.height, spec.width)
        length, thickness = rng.uniform(0.6, 0.85) * small, rng.uniform(5, 8)
        cy, cx = spec.height / 2, spec.width / 2
        # Image rows grow downwards, so a growing angle turns clockwise on screen.
        angle = rng.uniform(0, np.pi) + rng.uniform(0.5, 1.0) * np.pi * t
        along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        return _coverage(length / 2 - np.abs(along)) * _coverage(thickness / 2 - np.abs(across))
    raise ValueError(kind)


_PAIRS = (("right", False), ("right", True), ("down", False), ("down", True),
          ("growing", False), ("growing", True), ("clockwise", False), ("clockwise", True))  # fmt: skip


def render_video(label: int, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """uint8 frames [T, H, W, 3] of one video of class ``label``."""
    kind, backwards = _PAIRS[label]
    background = _background(rng, spec.height, spec.width)
    colour = rng.uniform(0.6, 1.0, size=3)
    colour[rng.integers(3)] = rng.uniform(0.0, 0.3)  # saturated, stands out from the background
    shape = _forward_motion(kind, rng, spec)[..., None]
    frames = background[None] * (1 - shape) + colour * shape
    if backwards:
        frames = frames[::-1]
    return np.ascontiguousarray((frames * 255).round().astype(np.uint8))


def video_path(split: str, label: int, index: int) -> str:
    """Where the ``index``-th video of class ``label`` in ``split`` lies, relative to the dataset root."""
    return f"{split}/{CLASSES[label]}/{index:04d}.mp4"


def _generate(folder: Path, spec: DemoSpec) -> None:
    for split, per_class, split_seed in (
        ("train", spec.videos_per_class, 0),
        ("val", spec.val_videos_per_class, 1),
    ):
        entries = []
        for label in range(len(CLASSES)):
            for i in range(per_class):
                rng = np.random.default_rng([spec.seed, split_seed, label, i])
                relative = video_path(split, label, i)
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                write_mp4(folder / relative, render_video(label, rng, spec), fps=spec.fps)
                entries.append((relative, label))
        write_data_list(folder / f"{split}.txt", entries)
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES), encoding="utf-8")
    (folder / "spec.json").write_text(json.dumps({"format": FORMAT_VERSION, **asdict(spec)}, indent=1), encoding="utf-8")


def ensure_demo_dataset(spec: DemoSpec) -> DemoDataset:
    """Returns the demo dataset for ``spec``, generating it first if it is not cached."""
    cache = Path(spec.cache_dir).expanduser() if spec.cache_dir else default_cache_dir()
    name = (
        f"demo_v{FORMAT_VERSION}_{spec.videos_per_class}x{spec.val_videos_per_class}"
        f"_{spec.num_frames}f{spec.height}x{spec.width}_s{spec.seed}"
    )
    folder = cache / name
    if not (folder / "spec.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache))
        try:
            _generate(scratch, spec)
            try:
                os.rename(scratch, folder)
            except OSError:
                if not (folder / "spec.json").is_file():  # not a concurrent twin: a real failure
                    raise RuntimeError(f"{folder} exists but is not a complete demo dataset; delete it") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return DemoDataset(root=folder, train_list=folder / "train.txt", val_list=folder / "val.txt", classes=CLASSES)
