"""Shared fixtures: generated videos (real H.264 files) and tiny configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

from video_mae.cli import register_resolvers
from video_mae.data.prep.encode import write_mp4

# Eight 8x8-pixel blocks along the top of each frame spell the frame index in binary;
# big flat blocks survive H.264 compression, so the index can be read back exactly.
CODE_BITS = 8
CODE_BLOCK = 8


def indexed_frames(num_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3]: a textured picture that changes every frame, with the
    frame's index written as a binary code along the top rows."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=(height // 8, width // 8, 3)).repeat(8, 0).repeat(8, 1)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frame = np.roll(base, shift=t, axis=1).astype(np.uint8)
        for bit in range(CODE_BITS):
            on = (t >> bit) & 1
            frame[:CODE_BLOCK, bit * CODE_BLOCK : (bit + 1) * CODE_BLOCK] = 255 if on else 0
        frames[t] = frame
    return frames


def read_code(frame: np.ndarray) -> int:
    """The index written by :func:`indexed_frames` into a decoded frame."""
    value = 0
    for bit in range(CODE_BITS):
        block = frame[1 : CODE_BLOCK - 1, bit * CODE_BLOCK + 1 : (bit + 1) * CODE_BLOCK - 1]
        if block.mean() > 127:
            value |= 1 << bit
    return value


@pytest.fixture(scope="session")
def indexed_video(tmp_path_factory) -> tuple[Path, int]:
    """(path, number of frames) of a 60-frame H.264 mp4 with index-coded frames."""
    path = tmp_path_factory.mktemp("videos") / "indexed.mp4"
    write_mp4(path, indexed_frames(60), fps=25, keyframe_interval=12)
    return path, 60


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """A cache folder shared by the tests that use the (tiny) demo dataset."""
    return tmp_path_factory.mktemp("demo_cache")


# The tiny demo every test shares (one cached copy): two videos per class and split.
TINY_DEMO = dict(
    unlabelled_videos_per_class=2, videos_per_class=2, val_videos_per_class=1, test_videos_per_class=1,
    num_frames=24, height=48, width=64,
)  # fmt: skip


def tiny_overrides(demo_cache: Path) -> list[str]:
    """A model and dataset small enough for a 2-core CI machine: a training step takes milliseconds."""
    return [
        f"data.demo.cache_dir={demo_cache}",
        *(f"data.demo.{key}={value}" for key, value in TINY_DEMO.items()),
        "data.num_frames=8",
        "data.crop_size=32",
        "data.num_workers=0",
        "model.encoder.embed_dim=32",
        "model.encoder.depth=2",
        "model.encoder.num_heads=2",
        "model.decoder_dim=32",
        "model.decoder_depth=1",
        "model.decoder_num_heads=2",
        "train.batch_size=4",
        "train.epochs=2",
        "train.log_every=1",
        "train.progress_bar=false",
        "train.device=cpu",
        "train.precision=fp32",
    ]


def compose_config(config_name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_module(config_module="video_mae.conf", version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.fixture
def tiny_pretrain_cfg(demo_cache):
    def make(*extra: str):
        return compose_config("pretrain", tiny_overrides(demo_cache) + list(extra))

    return make


@pytest.fixture(autouse=True)
def _few_threads():
    # Two cores on CI: keep intra-op threads from fighting the DataLoader workers.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


def tiny_finetune_overrides(demo_cache: Path) -> list[str]:
    """tiny_overrides without the MAE decoder keys (fine-tuning builds no decoder)."""
    return [o for o in tiny_overrides(demo_cache) if not o.startswith("model.decoder")]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, demo_cache) -> dict[str, Path]:
    """A tiny pretraining checkpoint and a classifier fine-tuned from it."""
    from video_mae.tasks import finetune, pretrain

    root = tmp_path_factory.mktemp("tiny_checkpoints")
    pretrain.run(compose_config("pretrain", tiny_overrides(demo_cache) + ["train.epochs=1", "recon_every_epochs=0"]), root / "pre")
    pretrained = root / "pre" / "checkpoints" / "last.pt"
    ft = compose_config(
        "finetune", tiny_finetune_overrides(demo_cache) + [f"pretrained={pretrained}", "train.epochs=1", "eval.num_clips=1"]
    )
    finetune.run(ft, root / "ft")
    return {"pretrain": pretrained, "finetune": root / "ft" / "checkpoints" / "last.pt", "root": root}


def console_command(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    """A console script of this install, run as a user runs it: its own process, the user's
    environment (without a HYDRA_FULL_ERROR the test process may have)."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    script = Path(sys.executable).parent / args[0]
    return subprocess.run([str(script), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
