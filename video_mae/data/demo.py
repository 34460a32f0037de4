"""The built-in demo datasets: short synthetic H.264 videos whose class is a motion.

Two worlds, eight classes each, in four pairs; each class of a pair is the other
played backwards, so a frame and its time-reversed twin come from the same
distribution and no single frame tells the classes of a pair apart: a model has
to use the motion.

* ``shapes`` (the default): one large shape (square, bar, triangle or cross, its
  kind, colour, size, orientation and position random per video) on a smooth
  two-colour gradient, moving right / left, down / up, growing / shrinking, or
  turning clockwise / counter-clockwise. The shape's kind is not the class.
* ``textured`` (a second world, for checking that a recipe is not tuned to the
  first): a striped disk, ring, half-disk or plus over a drifting grating (the
  background moves too, in a random direction unrelated to the class), moving
  along an arc clockwise / counter-clockwise, along either diagonal in either
  direction, or stretching from tall to wide / wide to tall.

Splits: ``unlabelled`` (the pretraining pool; its labels are written but a
pretraining never reads them), ``train`` (the labelled videos fine-tuning learns
from), ``val`` (for picking epochs) and ``test`` (held out: for final numbers only).
Each video is drawn from (seed, split, class, index) alone, so a larger dataset
starts with the videos of a smaller one.

The files are generated deterministically (fixed seeds, single-threaded x264)
on first use into a cache folder, written to a temporary folder and renamed into
place, so an interrupted or concurrent generation never leaves a half-written set.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config_types import check_types
from .lists import write_data_list
from .prep.encode import write_mp4

log = logging.getLogger(__name__)

SHAPES_CLASSES = (
    "moving_right",
    "moving_left",
    "moving_down",
    "moving_up",
    "growing",
    "shrinking",
    "turning_clockwise",
    "turning_counterclockwise",
)
TEXTURED_CLASSES = (
    "arc_clockwise",
    "arc_counterclockwise",
    "diagonal_down_right",
    "diagonal_up_left",
    "diagonal_down_left",
    "diagonal_up_right",
    "stretching_wide",
    "stretching_tall",
)
WORLDS = {"shapes": SHAPES_CLASSES, "textured": TEXTURED_CLASSES}
CLASSES = SHAPES_CLASSES  # the default world's classes
SPLITS = ("unlabelled", "train", "val", "test")
# Each split's seed component; train and val keep the numbers of format 1.
_SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "unlabelled": 3}
FORMAT_VERSION = 2


@dataclass(frozen=True)
class DemoSpec:
    """Which demo world, how many videos per class in each split, and where it is cached.

    cache_dir: None -> $VMAE_CACHE, else $XDG_CACHE_HOME/video_mae, else ~/.cache/video_mae.
    train_split: the split a task trains on (pretraining: ``unlabelled``; fine-tuning:
    ``train``); it does not change what is generated.
    """

    cache_dir: str | None = None
    world: str = "shapes"
    unlabelled_videos_per_class: int = 250
    videos_per_class: int = 40
    val_videos_per_class: int = 10
    test_videos_per_class: int = 30
    num_frames: int = 20
    height: int = 48
    width: int = 48
    fps: int = 10
    seed: int = 0
    train_split: str = "train"

    def __post_init__(self) -> None:
        check_types(self, "data.demo")
        if self.world not in WORLDS:
            raise ValueError(f"data.demo.world must be one of {', '.join(WORLDS)}, got {self.world!r}")
        if self.train_split not in SPLITS:
            raise ValueError(f"data.demo.train_split must be one of {', '.join(SPLITS)}, got {self.train_split!r}")
        if self.videos_per_class < 1 or self.val_videos_per_class < 1:
            raise ValueError("data.demo.videos_per_class and data.demo.val_videos_per_class must be at least 1")
        if self.unlabelled_videos_per_class < 0 or self.test_videos_per_class < 0:
            raise ValueError("data.demo.unlabelled_videos_per_class and data.demo.test_videos_per_class must be >= 0")
        if self.height % 2 or self.width % 2 or min(self.height, self.width) < 16:
            raise ValueError(f"data.demo height/width must be even and at least 16, got {self.height}x{self.width}")
        if self.num_frames < 2:
            raise ValueError(f"data.demo.num_frames must be at least 2, got {self.num_frames}")

    @property
    def classes(self) -> tuple[str, ...]:
        return WORLDS[self.world]

    def per_class(self, split: str) -> int:
        return {
            "unlabelled": self.unlabelled_videos_per_class,
            "train": self.videos_per_class,
            "val": self.val_videos_per_class,
            "test": self.test_videos_per_class,
        }[split]


@dataclass(frozen=True)
class DemoDataset:
    root: Path
    classes: tuple[str, ...]
    spec: DemoSpec

    def list_path(self, split: str) -> Path:
        """The data list of ``split`` (one of SPLITS)."""
        if split not in SPLITS:
            raise ValueError(f"no demo split {split!r}; the splits are {', '.join(SPLITS)}")
        return self.root / f"{split}.txt"

    @property
    def train_list(self) -> Path:
        """The list a task trains on: ``spec.train_split``."""
        return self.list_path(self.spec.train_split)

    @property
    def val_list(self) -> Path:
        return self.list_path("val")

    @property
    def test_list(self) -> Path:
        return self.list_path("test")


def default_cache_dir() -> Path:
    if os.environ.get("VMAE_CACHE"):
        return Path(os.environ["VMAE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "video_mae"


def _coverage(distance_inside: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance (pixels, positive inside)."""
    return np.clip(0.5 + distance_inside, 0.0, 1.0)


def _rotated(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along and across a direction ``angle`` around the centre (cx, cy)."""
    c, s = np.cos(angle), np.sin(angle)
    return (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c


def _polygon_distance(kind: str, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Signed distance (approximate, positive inside) of a shape of side ``size`` at the origin."""
    if kind == "square":
        return size / 2 - np.maximum(np.abs(u), np.abs(v))
    if kind == "bar":
        return np.minimum(size * 0.55 - np.abs(u), size * 0.25 - np.abs(v))
    if kind == "triangle":
        sides = [size * 0.225 - (u * np.cos(a) + v * np.sin(a)) for a in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)]
        return np.minimum(np.minimum(sides[0], sides[1]), sides[2])
    if kind == "cross":
        arm, half = size * 0.2, size * 0.5
        return np.maximum(np.minimum(half - np.abs(u), arm - np.abs(v)), np.minimum(half - np.abs(v), arm - np.abs(u)))
    raise ValueError(kind)


def _saturated_colour(rng: np.random.Generator) -> np.ndarray:
    colour = rng.uniform(0.6, 1.0, size=3)
    colour[rng.integers(3)] = rng.uniform(0.0, 0.3)  # saturated, stands out from the background
    return colour


def _render_shapes(pair: int, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """Frames in [0, 1], [T, H, W, 3], of the forward class of ``pair`` in the shapes world."""
    height, width = spec.height, spec.width
    small = min(height, width)
    t = np.linspace(0.0, 1.0, spec.num_frames)[:, None, None]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy, xx = yy[None], xx[None]
    # A smooth gradient: predictable from a few visible patches, so the pixels that
    # carry the class (the shape's) are what reconstruction has to get right.
    direction = rng.uniform(0, 2 * np.pi)
    ramp = ((xx[0] - width / 2) * np.cos(direction) + (yy[0] - height / 2) * np.sin(direction)) / max(height, width) + 0.5
    low, high = rng.uniform(0.05, 0.4, size=3), rng.uniform(0.05, 0.4, size=3)
    background = low + (high - low) * ramp[..., None]
    colour = _saturated_colour(rng)
    kind = ("square", "bar", "triangle", "cross")[rng.integers(4)]
    size = np.full_like(t, rng.uniform(0.3, 0.45) * small)
    angle = np.full_like(t, rng.uniform(0, 2 * np.pi))
    cx = np.full_like(t, width / 2 + rng.uniform(-0.1, 0.1) * width)
    cy = np.full_like(t, height / 2 + rng.uniform(-0.1, 0.1) * height)
    if pair in (0, 1):  # moving right / down
        along = width if pair == 0 else height
        travel = rng.uniform(0.4, 0.6) * along
        offset = (t - 0.5) * travel
        if pair == 0:
            cx = cx + offset
        else:
            cy = cy + offset
    elif pair == 2:  # growing
        lo, hi = rng.uniform(0.15, 0.25) * small, rng.uniform(0.5, 0.65) * small
        size = lo + (hi - lo) * t
    else:  # turning: image rows grow downwards, so a growing angle turns clockwise on screen
        angle = angle + rng.uniform(0.35, 0.6) * np.pi * t
    u, v = _rotated(xx, yy, cx, cy, angle)
    shape = _coverage(_polygon_distance(kind, u, v, size))[..., None]
    return background[None] * (1 - shape) + colour * shape


def _render_textured(pair: int, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """Frames in [0, 1], [T, H, W, 3], of the forward class of ``pair`` in the textured world."""
    height, width = spec.height, spec.width
    small = min(height, width)
    frames_t = np.linspace(0.0, 1.0, spec.num_frames)
    t = frames_t[:, None, None]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy, xx = yy[None], xx[None]
    # Background: a low-contrast grating drifting in a random direction (not the class).
    g_angle, drift_angle = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    wavelength, drift = rng.uniform(8, 16), rng.uniform(0.2, 0.6) * small
    shift = (t - 0.5) * drift
    phase = (xx - shift * np.cos(drift_angle)) * np.cos(g_angle) + (yy - shift * np.sin(drift_angle)) * np.sin(g_angle)
    tint, stripe = rng.uniform(0.15, 0.4, size=3), rng.uniform(0.04, 0.1, size=3)
    background = tint + stripe * np.sin(2 * np.pi * phase / wavelength)[..., None]
    colour_a, colour_b = _saturated_colour(rng), _saturated_colour(rng) * 0.6
    kind = ("disk", "ring", "half_disk", "plus")[rng.integers(4)]
    radius = rng.uniform(0.18, 0.26) * small
    sx = sy = np.ones_like(t)
    cx = np.full_like(t, width / 2 + rng.uniform(-0.08, 0.08) * width)
    cy = np.full_like(t, height / 2 + rng.uniform(-0.08, 0.08) * height)
    if pair == 0:  # along an arc, clockwise on screen (rows grow downwards)
        start, sweep, arc = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 0.8) * np.pi, rng.uniform(0.2, 0.3) * small
        cx = cx + arc * np.cos(start + sweep * t)
        cy = cy + arc * np.sin(start + sweep * t)
    elif pair in (1, 2):  # along a diagonal: down-right, or down-left
        travel = rng.uniform(0.3, 0.45) * small
        cx = cx + (t - 0.5) * travel * (1 if pair == 1 else -1)
        cy = cy + (t - 0.5) * travel
    else:  # stretching from tall to wide, area kept
        stretch = rng.uniform(1.5, 2.0)
        sx = stretch ** (t - 0.5)  # tall (narrow) at the start, wide at the end
        sy = 1 / sx
    u, v = (xx - cx) / sx, (yy - cy) / sy
    r = np.hypot(u, v)
    if kind == "disk":
        distance = radius - r
    elif kind == "ring":
        distance = np.minimum(radius - r, r - radius * 0.45)
    elif kind == "half_disk":
        distance = np.minimum(radius - r, -v + radius * 0.1)
    else:
        arm = radius * 0.4
        distance = np.maximum(np.minimum(radius - np.abs(u), arm - np.abs(v)), np.minimum(radius - np.abs(v), arm - np.abs(u)))
    # Stripes fixed to the object, so the texture moves with it.
    s_angle = rng.uniform(0, np.pi)
    stripes = (np.sin(2 * np.pi * (u * np.cos(s_angle) + v * np.sin(s_angle)) / rng.uniform(5, 8)) > 0)[..., None]
    fill = np.where(stripes, colour_a, colour_b)
    shape = _coverage(distance)[..., None]
    return background * (1 - shape) + fill * shape


_RENDERERS = {"shapes": _render_shapes, "textured": _render_textured}


def render_video(label: int, rng: np.random.Generator, spec: DemoSpec) -> np.ndarray:
    """uint8 frames [T, H, W, 3] of one video of class ``label`` in ``spec.world``."""
    pair, backwards = divmod(label, 2)
    frames = _RENDERERS[spec.world](pair, rng, spec)
    if backwards:
        frames = frames[::-1]
    return np.ascontiguousarray((frames.clip(0, 1) * 255).round().astype(np.uint8))


def video_path(split: str, label: int, index: int, world: str = "shapes") -> str:
    """Where the ``index``-th video of class ``label`` in ``split`` lies, relative to the dataset root."""
    return f"{split}/{WORLDS[world][label]}/{index:04d}.mp4"


def dataset_name(spec: DemoSpec) -> str:
    """The cache folder's name: a function of everything that changes the files."""
    counts = "x".join(str(spec.per_class(split)) for split in SPLITS)
    return f"demo_v{FORMAT_VERSION}_{spec.world}_{counts}_{spec.num_frames}f{spec.height}x{spec.width}_{spec.fps}fps_s{spec.seed}"


def _generate(folder: Path, spec: DemoSpec) -> None:
    total = sum(spec.per_class(split) for split in SPLITS) * len(spec.classes)
    log.info("generating the demo dataset (%s world, %d videos) into %s; done once, then cached", spec.world, total, folder.parent)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="demo videos", unit="video", leave=False, disable=total < 100)
    for split in SPLITS:
        entries = []
        for label in range(len(spec.classes)):
            for i in range(spec.per_class(split)):
                rng = np.random.default_rng([spec.seed, _SPLIT_SEEDS[split], label, i])
                relative = video_path(split, label, i, spec.world)
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                write_mp4(folder / relative, render_video(label, rng, spec), fps=spec.fps)
                entries.append((relative, label))
                bar.update()
        write_data_list(folder / f"{split}.txt", entries)
    bar.close()
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in spec.classes), encoding="utf-8")
    described = {k: v for k, v in asdict(spec).items() if k not in ("cache_dir", "train_split")}
    (folder / "spec.json").write_text(json.dumps({"format": FORMAT_VERSION, **described}, indent=1), encoding="utf-8")


def ensure_demo_dataset(spec: DemoSpec) -> DemoDataset:
    """Returns the demo dataset for ``spec``, generating it first if it is not cached."""
    cache = Path(spec.cache_dir).expanduser() if spec.cache_dir else default_cache_dir()
    name = dataset_name(spec)
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
    return DemoDataset(root=folder, classes=spec.classes, spec=spec)
