"""What every training task sets up the same way: the training set, the number of
steps, the learning rate for the global batch, the schedule, the optimizer and
the per-epoch loaders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from ..data.dataset import BadVideoLog, VideoClipDataset
from ..data.lists import VideoRecord
from ..data.loader import epoch_loaders, training_dataset
from ..data.settings import DataSettings
from ..data.transforms import ClipTransform
from ..distributed import DistContext
from ..engine.optim import OptimSettings, build_adamw
from ..engine.schedule import WarmupCosineSchedule
from ..engine.train import TrainSettings


@dataclass
class TrainingPlan:
    dataset: VideoClipDataset
    micro_batches_per_epoch: int
    steps_per_epoch: int
    accum_steps: int
    global_batch: int  # clips per optimizer step, over all ranks
    peak_lr: float
    final_lr: float
    schedule: WarmupCosineSchedule
    optimizer: torch.optim.Optimizer
    loaders: Callable[[int, int], DataLoader]


def plan_training(
    model: torch.nn.Module,
    records: Sequence[VideoRecord],
    data: DataSettings,
    augment: ClipTransform,
    train: TrainSettings,
    optim: OptimSettings,
    device: torch.device,
    bad_videos: BadVideoLog,
    context: DistContext = DistContext(),
) -> TrainingPlan:
    dataset = training_dataset(records, data, augment, seed=train.seed, bad_videos=bad_videos)
    # Whole optimizer steps only: the remainder of an epoch is dropped.
    accum = train.resolved_accum_steps(context.world_size)
    videos_per_step = train.batch_size * accum * context.world_size
    micro = len(dataset) // videos_per_step * accum
    if micro == 0:
        raise ValueError(
            f"the training list has {len(dataset)} videos, fewer than one optimizer step needs "
            f"(train.batch_size x accumulation x ranks = {train.batch_size} x {accum} x {context.world_size})"
        )
    steps = micro // accum
    global_batch = videos_per_step * data.clips_per_video
    peak_lr, final_lr = optim.scaled_lr(global_batch)
    schedule = WarmupCosineSchedule(peak_lr, final_lr, round(optim.warmup_epochs * steps), train.epochs * steps)
    loaders = epoch_loaders(
        dataset,
        train.batch_size,
        train.seed,
        data.num_workers,
        pin_memory=data.pin_memory and device.type == "cuda",
        timeout_s=data.timeout_s,
        rank=context.rank,
        world_size=context.world_size,
    )
    return TrainingPlan(
        dataset=dataset,
        micro_batches_per_epoch=micro,
        steps_per_epoch=steps,
        accum_steps=accum,
        global_batch=global_batch,
        peak_lr=peak_lr,
        final_lr=final_lr,
        schedule=schedule,
        optimizer=build_adamw(model, optim, peak_lr, device),
        loaders=loaders,
    )
