"""Console entry points.

The Hydra apps read their configs from the package ``video_mae.conf`` (the
repository's ``conf/`` folder), so they work from any directory and however the
package was installed; users add their own config folders with ``--config-dir``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

CONFIG_PATH = "pkg://video_mae.conf"


def run_name(override_dirname: str) -> str:
    """A run directory name from Hydra's ``override_dirname``: the overrides of the
    command ('default' without any), flattened into one safe path component."""
    name = override_dirname.replace("/", "_").replace("\\", "_") or "default"
    if len(name) > 120:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("vmae_run_name"):
        OmegaConf.register_new_resolver("vmae_run_name", run_name)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input (configs, lists, videos, checkpoints): reported in one
    line that names the file/line/key, without a traceback."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .checkpoint import CheckpointError
    from .data.dataset import TooManyBadVideos
    from .data.lists import DataListError
    from .engine.train import NonFiniteLossError
    from .models.pretrained import PretrainedMismatch

    return (
        ValueError,
        FileExistsError,
        DataListError,
        CheckpointError,
        TooManyBadVideos,
        NonFiniteLossError,
        PretrainedMismatch,
        HydraException,
        OmegaConfBaseException,
    )


def _hydra_app(config_name: str, task):
    import hydra

    register_resolvers()
    prog = {"evaluate": "vmae-eval"}.get(config_name, f"vmae-{config_name}")

    def main(cfg) -> None:
        try:
            summary = task(cfg)
        except _user_errors() as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            message = str(err).strip().replace("\n", "; ")
            print(f"{prog}: error: {message}", file=sys.stderr)
            print(f"{prog}: (set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
            sys.exit(2)
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process reports
            print(json.dumps(summary, indent=1))

    return hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(main)


def pretrain() -> None:
    """vmae-pretrain: masked-autoencoder pretraining (a Hydra app)."""
    from .tasks.pretrain import run

    _hydra_app("pretrain", run)()


def finetune() -> None:
    """vmae-finetune: fine-tuning or probing for action recognition (a Hydra app)."""
    from .tasks.finetune import run

    _hydra_app("finetune", run)()


def evaluate() -> None:
    """vmae-eval: multi-view evaluation of a fine-tuned checkpoint (a Hydra app)."""
    from .tasks.evaluate import run

    _hydra_app("evaluate", run)()


def visualize(argv: list[str] | None = None) -> int:
    """vmae-visualize: reconstruction pictures of a video from a pretraining checkpoint."""
    parser = argparse.ArgumentParser(
        prog="vmae-visualize",
        description="Render original / masked / reconstructed frames of a video with a pretraining checkpoint.",
    )
    parser.add_argument("checkpoint", type=Path, help="a pretraining checkpoint (e.g. <run>/checkpoints/last.pt)")
    parser.add_argument("video", type=Path, help="a video file")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: the current one)")
    parser.add_argument(
        "--formats", default="png,gif", help="comma-separated, from png (grid), gif, mp4 (animations); default png,gif"
    )
    parser.add_argument("--mask-ratio", type=float, default=None, help="override the checkpoint's mask ratio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask (default 0)")
    parser.add_argument("--scale", type=int, default=4, help="pixel upscaling of the outputs (default 4)")
    parser.add_argument("--reader", default="auto", choices=["auto", "decord", "pyav"])
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - {"png", "gif", "mp4"})
    if unknown or not formats:
        parser.error(f"--formats takes png, gif and mp4; got {args.formats!r}")
    if args.scale < 1:
        parser.error("--scale must be at least 1")

    from .checkpoint import CheckpointError
    from .data.readers import VideoReadError
    from .tasks.pretrain import load_pretrained, read_center_clip
    from .visualize import reconstruct, reconstruction_grid, save_gif, save_png, side_by_side

    try:
        model, data = load_pretrained(args.checkpoint, mask_ratio=args.mask_ratio)
        clip = read_center_clip(args.video, data, args.reader)
    except (CheckpointError, VideoReadError, ValueError) as err:
        print(f"vmae-visualize: error: {err}", file=sys.stderr)
        return 2
    recon = reconstruct(model, clip, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.video.stem}_recon"
    written = []
    if "png" in formats:
        save_png(reconstruction_grid(recon), f"{stem}.png", scale=args.scale)
        written.append(f"{stem}.png")
    animation = side_by_side(recon)
    if "gif" in formats:
        save_gif(animation, f"{stem}.gif", scale=args.scale)
        written.append(f"{stem}.gif")
    if "mp4" in formats:
        from .data.encode import write_mp4

        big = animation.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
        write_mp4(f"{stem}.mp4", big, fps=8)
        written.append(f"{stem}.mp4")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(visualize())
