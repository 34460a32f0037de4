"""How the cost of a clip grows with its length and size: the embedding forward and the
pretraining step over a grid of frames x image sizes, ours and transformers' VideoMAE,
time and peak memory per clip, so that a user can see what longer or larger clips cost
before renting a GPU.

Each point is one :func:`~video_mae.bench.models.bench_models` run (same warm-up, median,
FLOP count and memory accounting), without the fine-tuning step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .models import bench_model_config, bench_models


@dataclass(frozen=True)
class CostPoint:
    """One workload at one clip shape: seconds and peak memory (GiB; CPU: resident memory
    the workload added) per clip."""

    frames: int
    size: int
    tokens: int
    workload: str
    implementation: str
    seconds_per_clip: float
    gflop_per_clip: float
    memory_gib_per_clip: float | None


def bench_cost(
    preset: dict,
    frames: Sequence[int],
    sizes: Sequence[int],
    batch: int,
    precision: str,
    device: torch.device,
    tubelet: int = 2,
    mask_ratio: float = 0.9,
    warmup: int = 1,
    repeats: int = 3,
    with_transformers: bool = True,
) -> list[CostPoint]:
    """Every (frames, size) point of the model preset ``preset`` (a plain model config), smallest first."""
    points = []
    for num_frames in frames:
        for size in sizes:
            model = bench_model_config(preset, num_frames, size, tubelet)
            results, _ = bench_models(
                model, batch, mask_ratio, precision, device, warmup, repeats, with_transformers=with_transformers, finetune=False
            )
            tokens = (num_frames // tubelet) * (size // model["encoder"]["patch_size"]) ** 2
            for r in results:
                points.append(
                    CostPoint(
                        frames=num_frames,
                        size=size,
                        tokens=tokens,
                        workload=r.name,
                        implementation=r.implementation,
                        seconds_per_clip=r.seconds / batch,
                        gflop_per_clip=r.gflop_per_clip,
                        memory_gib_per_clip=None if r.peak_memory_gib is None else r.peak_memory_gib / batch,
                    )  # fmt: skip
                )
    return points


def cost_table(points: list[CostPoint]) -> str:
    lines = [
        "| frames | size | tokens | workload | implementation | s/clip | GFLOP/clip | memory GiB/clip | vs transformers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    theirs = {(p.frames, p.size, p.workload): p.seconds_per_clip for p in points if p.implementation.startswith("transformers")}
    for p in points:
        key = (p.frames, p.size, p.workload)
        ratio = f"{theirs[key] / p.seconds_per_clip:.2f}x" if key in theirs and not p.implementation.startswith("transformers") else ""
        memory = f"{p.memory_gib_per_clip:.2f}" if p.memory_gib_per_clip is not None else ""
        lines.append(
            f"| {p.frames} | {p.size} | {p.tokens} | {p.workload} | {p.implementation} | {p.seconds_per_clip:.3f} | "
            f"{p.gflop_per_clip:.1f} | {memory} | {ratio} |"
        )
    return "\n".join(lines)


def cost_plot(points: list[CostPoint], path: Path, title: str) -> None:
    """Seconds and memory per clip against tokens per clip, one line per workload and side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(figure)
    time_axes, memory_axes = figure.subplots(1, 2)
    series = sorted({(p.workload, p.implementation) for p in points})
    for workload, implementation in series:
        mine = sorted((p for p in points if (p.workload, p.implementation) == (workload, implementation)), key=lambda p: p.tokens)
        style = "--" if implementation.startswith("transformers") else "-"
        label = f"{workload}, {implementation}"
        time_axes.plot([p.tokens for p in mine], [p.seconds_per_clip for p in mine], style, marker="o", label=label)
        if all(p.memory_gib_per_clip is not None for p in mine):
            memory_axes.plot([p.tokens for p in mine], [p.memory_gib_per_clip for p in mine], style, marker="o", label=label)
    for axes, name in ((time_axes, "seconds per clip"), (memory_axes, "memory per clip (GiB)")):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("tokens per clip (frames / tubelet x (size / patch)^2)")
        axes.set_ylabel(name)
        axes.grid(True, which="both", alpha=0.3)
    time_axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_cost(points: list[CostPoint], out: Path, settings: dict, title: str) -> None:
    """cost.json, cost.md and cost.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "cost.json").write_text(json.dumps({"settings": settings, "points": [asdict(p) for p in points]}, indent=1) + "\n")
    (out / "cost.md").write_text(f"{title}\n\n{cost_table(points)}\n")
    cost_plot(points, out / "cost.png", title)
