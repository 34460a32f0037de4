"""What every training task sets up the same way: the run folder, its log and curves,
the training set, the number of steps, the learning rate for the global batch, the
schedule, the optimizer, the per-epoch loaders and the Trainer over them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from ..curves import CurvesPainter
from ..data.dataset import BadVideoLog, VideoClipDataset
from ..data.lists import VideoRecord
from ..data.loader import epoch_loaders, training_dataset
from ..data.settings import DataSettings
from ..data.transforms import ClipNormalizer, ClipTransform
from ..distributed import barrier
from ..engine.optim import OptimSettings, build_adamw
from ..engine.schedule import WarmupCosineSchedule
from ..engine.train import LossFn, Optimization, RunOutput, TrainData, Trainer, TrainHooks, TrainSettings
from ..run_log import RunLogger
from .run_dir import RunDir, open_run_dir
from .session import TaskSession

log = logging.getLogger(__name__)


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


@dataclass
class TrainingRun:
    """A training task's opened run folder with what writes into it: the log (``log.jsonl``,
    TensorBoard, W&B), the unreadable-video list and the curves, on ``session``, with the
    run's ``train``, ``data`` and ``optim`` settings."""

    session: TaskSession
    train: TrainSettings
    data: DataSettings
    optim: OptimSettings
    folder: RunDir
    logger: RunLogger
    bad_videos: BadVideoLog
    curves: CurvesPainter

    @property
    def path(self) -> Path:
        return self.folder.path

    def plan(self, model: torch.nn.Module, records: Sequence[VideoRecord], augment: ClipTransform) -> TrainingPlan:
        """The training set, steps per epoch, learning rate for the global batch, schedule,
        optimizer and per-epoch loaders of ``model`` on ``records``."""
        context, device = self.session.context, self.session.device
        train, data, optim = self.train, self.data, self.optim
        dataset = training_dataset(records, data, augment, seed=train.seed, bad_videos=self.bad_videos)
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

    def trainer(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        plan: TrainingPlan,
        hooks: TrainHooks,
        extras: dict | None = None,
    ) -> Trainer:
        return Trainer(
            model=model,
            loss_fn=loss_fn,
            optimization=Optimization(plan.optimizer, plan.schedule, clip_grad=self.optim.clip_grad),
            data=TrainData(plan.loaders, plan.micro_batches_per_epoch, normalizer=ClipNormalizer(self.data.mean, self.data.std)),
            output=RunOutput(self.path, self.logger, self.folder.config),
            settings=self.train,
            device=self.session.device,
            precision=self.session.precision,
            context=self.session.context,
            hooks=hooks,
            extras=extras,
        )

    def announce(self, plan: TrainingPlan, videos: str) -> None:
        """Where the run runs and how it steps, on the console (``videos`` says what it trains on)."""
        session = self.session
        log.info("run directory: %s", self.path)
        log.info(
            "%s, %s; %s, %d steps per epoch; lr %.3g (base_lr %.3g x global batch %d / 256)",
            session.device, session.precision, videos, plan.steps_per_epoch, plan.peak_lr, self.optim.base_lr, plan.global_batch,
        )  # fmt: skip

    def log_start(self, plan: TrainingPlan, task_fields: dict) -> None:
        """A new run's ``start`` record in the log, with the task's own ``task_fields``."""
        session = self.session
        self.logger.log(
            "start",
            step=0,
            device=str(session.device),
            precision=session.precision,
            train_videos=len(plan.dataset),
            global_batch=plan.global_batch,
            ranks=session.context.world_size,
            batch_per_rank=self.train.batch_size,
            accum_steps=plan.accum_steps,
            base_lr=self.optim.base_lr,
            lr=plan.peak_lr,
            min_lr=plan.final_lr,
            steps_per_epoch=plan.steps_per_epoch,
            total_steps=plan.schedule.total_steps,
            warmup_steps=plan.schedule.warmup_steps,
            **task_fields,
        )


def open_training_run(
    cfg: DictConfig,
    run_dir: str | Path | None,
    settings: tuple[TrainSettings, DataSettings, OptimSettings],
    free_keys: Sequence[str],
    session: TaskSession,
) -> TrainingRun:
    """Opens (or reopens, to resume) the run folder of ``cfg``, with its log, on every rank
    (only the first writes), and seeds the model's initialisation with the train settings'
    seed. ``settings``: ``cfg``'s train, data and optim sections, built."""
    train, data, optim = settings
    main = session.context.is_main
    folder = open_run_dir(cfg, run_dir, train.resume, free_keys, write=main)
    barrier(session.context)
    torch.manual_seed(train.seed)
    logger = RunLogger(folder.path, tensorboard=train.tensorboard, enabled=main, wandb=train.wandb, config=folder.config)
    return TrainingRun(
        session, train, data, optim, folder, logger, BadVideoLog(folder.bad_videos), CurvesPainter(folder.path, enabled=main)
    )
