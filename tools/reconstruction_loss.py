#!/usr/bin/env python
"""Reconstruction loss of pretraining checkpoints on their validation videos, side by side.

    python tools/reconstruction_loss.py runs/a/checkpoints/last.pt runs/b/checkpoints/last.pt

Each checkpoint's model, in evaluation mode, reconstructs every hidden token of the centre
clip of each video in its data's validation list, with masks drawn from one seed, so runs
trained with different options (decoder masking, say, whose training loss covers only part
of the hidden tokens) are compared on the same work.
"""

from __future__ import annotations

import argparse

import torch

from video_mae.tasks.pretrain import load_pretrained, read_center_clip


def reconstruction_loss(checkpoint: str, seed: int = 0, batch_size: int = 16) -> tuple[float, int]:
    """(mean loss per video, number of videos)."""
    model, data = load_pretrained(checkpoint)
    _, val = data.records()
    if not val:
        raise SystemExit(f"{checkpoint}: the checkpoint's data has no validation list")
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(val), batch_size):
            clips = torch.stack([read_center_clip(r.path, data) for r in val[start : start + batch_size]])
            total += model(clips, generator=generator).loss.item() * len(clips)
    return total / len(val), len(val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks (default 0)")
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        loss, count = reconstruction_loss(checkpoint, args.seed)
        print(f"{checkpoint}\t{loss:.5f}\t({count} videos)")


if __name__ == "__main__":
    main()
