"""vmae-visualize: what a pretraining checkpoint reconstructs from a masked video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.readers import BACKENDS as READERS


def visualize(argv: list[str] | None = None) -> int:
    """vmae-visualize: reconstruction pictures of a video from a pretraining checkpoint."""
    parser = argparse.ArgumentParser(
        prog="vmae-visualize",
        description="Render original / masked / reconstructed frames of a video with a pretraining checkpoint.",
    )
    parser.add_argument("checkpoint", type=Path, help="a pretraining checkpoint (e.g. <run>/checkpoints/last.pt)")
    parser.add_argument("video", type=Path, help="a video file")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: the current one)")
    parser.add_argument("--formats", default="png,gif", help="comma-separated, from png (grid), gif, mp4 (animations); default png,gif")
    parser.add_argument("--mask-ratio", type=float, default=None, help="override the checkpoint's mask ratio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask (default 0)")
    parser.add_argument("--scale", type=int, default=4, help="pixel upscaling of the outputs (default 4)")
    parser.add_argument("--reader", default="auto", choices=list(READERS))
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - {"png", "gif", "mp4"})
    if unknown or not formats:
        parser.error(f"--formats takes png, gif and mp4; got {args.formats!r}")
    if args.scale < 1:
        parser.error("--scale must be at least 1")

    from ..checkpoint import CheckpointError
    from ..data.readers import VideoReadError
    from ..tasks.pretrain import load_pretrained, read_center_clip
    from ..visualize import reconstruct, reconstruction_grid, save_gif, save_png, side_by_side

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
        from ..data.prep.encode import write_mp4

        big = animation.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
        write_mp4(f"{stem}.mp4", big, fps=8)
        written.append(f"{stem}.mp4")
    for path in written:
        print(path)
    return 0
