"""Does bf16 autocast train like fp32? ViT-S MAE pretraining loss curves in both, same seeds.

Demo clips (16 frames) are upsampled to 112 px so that the model has ViT-S's real width and
token count; each precision starts from the same weights and sees the same clips and masks.

    python tools/bf16_loss_curves.py --steps 160 [--json curves.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from video_mae.bench.models import bench_model_config, build_ours
from video_mae.data.demo import DemoSpec, render_video
from video_mae.tasks.presets import model_preset

FRAMES, SIZE, BATCH = 16, 112, 4


def demo_videos(count: int) -> torch.Tensor:
    spec = DemoSpec()
    return torch.from_numpy(np.stack([render_video(i % 8, np.random.default_rng([3, i]), spec) for i in range(count)]))


def clip_batch(videos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    ids = torch.randint(0, len(videos), (BATCH,), generator=generator)
    starts = torch.randint(0, videos.shape[1] - FRAMES + 1, (BATCH,), generator=generator)
    clips = torch.stack([videos[i, s : s + FRAMES] for i, s in zip(ids.tolist(), starts.tolist())])
    x = clips.permute(0, 4, 1, 2, 3).float() / 255
    x = F.interpolate(x, size=(FRAMES, SIZE, SIZE), mode="trilinear", align_corners=False)
    return (x - 0.45) / 0.225


def losses_for(precision: str, videos: torch.Tensor, steps: int, peak_lr: float) -> tuple[list[float], float]:
    torch.manual_seed(0)
    model = build_ours(bench_model_config(model_preset("vit_s", "vit_s"), FRAMES, SIZE, 2), 0.9)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.05)
    data_rng, mask_rng = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = peak_lr * min(1.0, (step + 1) / 10) * 0.5 * (1 + math.cos(math.pi * step / steps))
        x = clip_batch(videos, data_rng)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(x, generator=mask_rng).loss
        optimizer.zero_grad()
        loss.float().backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--json", default=None, help="also write both curves here")
    args = parser.parse_args()
    videos = demo_videos(256)
    curves = {}
    for precision in ("fp32", "bf16"):
        losses, seconds = losses_for(precision, videos, args.steps, args.lr)
        curves[precision] = losses
        means = " ".join(f"{np.mean(losses[i : i + 20]):.4f}" for i in range(0, args.steps, 20))
        print(f"{precision}: {seconds:.1f} s; loss per 20 steps: {means}", flush=True)
    fp32, bf16 = np.array(curves["fp32"]), np.array(curves["bf16"])
    half = args.steps // 2
    print(f"mean |bf16 - fp32| per step over the last {args.steps - half} steps: {np.abs(fp32 - bf16)[half:].mean():.2g}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(curves, f)


if __name__ == "__main__":
    main()
