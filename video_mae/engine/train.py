"""The training loop: steps, accumulation, mixed precision, clipping, schedule,
non-finite handling, logging and checkpoints. No Hydra below this line.

Next to it: ``optimizer_step`` (unscale, clip, skip non-finite, apply), ``state`` (the
checkpoint dict), ``step_stats`` (loss window and skipped-step count, kept on the device)
and ``wrap`` (DDP, torch.compile)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..distributed import DistContext, barrier
from ..run_files import LAST, RunFiles
from ..run_log import RunLogger, read_log_records
from .device import autocast, make_grad_scaler
from .optimizer_step import GuardedOptimizerStep
from .schedule import WarmupCosineSchedule
from .settings import TrainSettings
from .state import EVALUATION_KEYS, Position, Stateful, TrainingState
from .step_stats import LogWindow, NonFiniteLossError, NonFiniteTracker, epoch_line
from .wrap import wrap_for_training

# TrainSettings and NonFiniteLossError are re-exported: older configs and checkpoints name
# TrainSettings here, and the command line catches NonFiniteLossError from here.
__all__ = ["NonFiniteLossError", "Optimization", "RunOutput", "TrainData", "TrainHooks", "TrainSettings", "Trainer"]

log = logging.getLogger(__name__)

# (model, clips [B, C, T, H, W] on the device, labels [B] on the device, generator) -> scalar loss
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
# (epoch, start_batch) -> iterable of batches (dicts with "video", "label", "replaced")
LoaderFactory = Callable[[int, int], Any]


@dataclass(frozen=True)
class Optimization:
    """How the weights move: the optimizer, its learning rate per optimizer step, and
    the max global gradient norm (None: no clipping)."""

    optimizer: torch.optim.Optimizer
    schedule: WarmupCosineSchedule
    clip_grad: float | None = None


@dataclass(frozen=True)
class TrainData:
    """What the loop reads. ``loaders(epoch, start_batch)`` starts an epoch at any
    micro-batch, so a resume continues mid-epoch. The loader sends uint8 clips (a quarter
    of float32's bytes); ``normalizer`` turns them into model input on the device."""

    loaders: LoaderFactory
    micro_batches_per_epoch: int
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None

    def to_device(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(clips [B * k, C, T, H, W] as model input, labels [B * k]) of a batch of B videos,
        k clips each, on ``device``."""
        clips = batch["video"].to(device, non_blocking=True).flatten(0, 1)
        if self.normalizer is not None:
            clips = self.normalizer(clips)
        labels = batch["label"].to(device, non_blocking=True)
        return clips, labels.repeat_interleave(clips.shape[0] // labels.shape[0])


@dataclass(frozen=True)
class RunOutput:
    """Where the run writes: checkpoints under ``run_dir/checkpoints``, records through
    ``logger``; ``config`` (the resolved config, a plain dict) goes into every checkpoint."""

    run_dir: Path
    logger: RunLogger
    config: dict


@dataclass(frozen=True)
class TrainHooks:
    """``on_epoch_end(epoch)`` runs after the epoch's checkpoint (validation, pictures);
    ``on_step_end(step)`` after each optimizer step (EMA weights). Both on every rank."""

    on_epoch_end: Callable[[int], None] | None = None
    on_step_end: Callable[[int], None] | None = None


class Trainer:
    """Runs epochs of optimizer steps and owns everything a resume needs.

    The loss function gets a ``torch.Generator`` on the device (seeded from
    ``settings.seed``) for its own randomness, such as masks; its state is saved
    in checkpoints with the global RNG states, the optimizer, the scaler, the
    ``extras`` and the position in the data, so a resumed run continues exactly
    where it stopped.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimization: Optimization,
        data: TrainData,
        output: RunOutput,
        settings: TrainSettings,
        device: torch.device,
        precision: str,
        context: DistContext = DistContext(),
        hooks: TrainHooks = TrainHooks(),
        extras: Mapping[str, Stateful] | None = None,
    ) -> None:
        self.accum_steps = settings.resolved_accum_steps(context.world_size)
        if data.micro_batches_per_epoch % self.accum_steps:
            raise ValueError("micro_batches_per_epoch must be a multiple of the accumulation steps")
        self.model, self.loss_fn, self.settings = model, loss_fn, settings
        self.optimizer, self.schedule = optimization.optimizer, optimization.schedule
        self.data, self.output, self.hooks = data, output, hooks
        self.device, self.precision, self.context = device, precision, context
        self.ddp, self.forward_model = wrap_for_training(model, settings, context, device)
        self.scaler = make_grad_scaler(device, precision)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(settings.seed)
        self.position = Position()
        self.state = TrainingState(model, self.optimizer, self.scaler, self.generator, extras=dict(extras or {}),
                                   device=device, context=context, fsdp=settings.fsdp and context.distributed)  # fmt: skip
        self.optimizer_step = GuardedOptimizerStep(self.optimizer, self.scaler, optimization.clip_grad, context)
        self.nonfinite = NonFiniteTracker(device)

    @property
    def step(self) -> int:
        return self.position.step

    @property
    def epoch(self) -> int:
        return self.position.epoch

    @property
    def finished(self) -> bool:
        return self.position.epoch >= self.settings.epochs

    @property
    def checkpoint_dir(self) -> Path:
        return RunFiles(self.output.run_dir).checkpoints

    # --- checkpoints -------------------------------------------------------

    def save(self, name: str = LAST, evaluation_copy: str | None = None) -> Path:
        """Writes checkpoints/<name> on rank 0 (all ranks must call it); with
        ``evaluation_copy``, also checkpoints/<evaluation_copy> holding only EVALUATION_KEYS
        of the same state (a fine-tuning's best.pt)."""
        path = self.checkpoint_dir / name
        state = self.state.state_dict(self.position, self.output.config)
        if self.context.is_main:
            save_checkpoint(state, path)
            if evaluation_copy is not None:
                save_checkpoint({key: state[key] for key in EVALUATION_KEYS}, self.checkpoint_dir / evaluation_copy)
        barrier(self.context)
        return path

    def resume(self, path: Path) -> None:
        self.state.load_state_dict(load_checkpoint(path), self.position)
        pos = self.position
        self.output.logger.log("resume", step=pos.step, epoch=pos.epoch, batches_done=pos.batches_done, path=str(path))

    # --- training ----------------------------------------------------------

    def fit(self) -> dict:
        """Trains until ``settings.epochs``; returns a summary."""
        pos, logger = self.position, self.output.logger
        self.model.train()
        window = LogWindow(self.device)
        summary: dict[str, Any] = {"first_loss": None, "last_loss": None}
        started, first_epoch = time.perf_counter(), pos.epoch
        while not self.finished:
            epoch, epoch_start = pos.epoch, time.perf_counter()
            clips = self._train_epoch(epoch, window, summary)
            pos.epoch, pos.batches_done = epoch + 1, 0
            if logger.enabled:
                seconds, elapsed = time.perf_counter() - epoch_start, time.perf_counter() - started
                remaining = elapsed / max(pos.epoch - first_epoch, 1) * (self.settings.epochs - pos.epoch)
                lr = self.optimizer.param_groups[0]["lr"]
                log.info(
                    epoch_line(epoch, self.settings.epochs, summary.get("last_loss"), lr, clips / max(seconds, 1e-9), elapsed, remaining)
                )
            path = self.save()
            if self.settings.save_every_epochs and pos.epoch % self.settings.save_every_epochs == 0:
                self.save(f"epoch_{pos.epoch:04d}.pt")
            logger.log("epoch", step=pos.step, epoch=epoch, checkpoint=str(path), **pos.counters)
            if self.hooks.on_epoch_end is not None:
                # Visualisation must not change the training RNG streams.
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    self.hooks.on_epoch_end(epoch)
                self.model.train()
        # The run's first and last logged loss, from the log's standing records: a resumed or
        # merely reopened run has logged only part of the run (or nothing) in this process.
        logged = read_log_records(logger.path).get("train", []) if logger.enabled else []
        losses = [r["loss"] for r in logged if isinstance(r.get("loss"), (int, float))]
        if losses:
            summary = {**summary, "first_loss": losses[0], "last_loss": losses[-1]}
        return {**summary, "step": pos.step, "epochs": pos.epoch, **pos.counters}

    def _train_epoch(self, epoch: int, window: LogWindow, summary: dict[str, Any]) -> int:
        """Trains the rest of epoch ``epoch``; returns the clips of all ranks it trained on."""
        settings, pos, accum, total = self.settings, self.position, self.accum_steps, self.data.micro_batches_per_epoch
        batches = iter(self.data.loaders(epoch, pos.batches_done))
        bar = tqdm(total=total, initial=pos.batches_done, desc=f"epoch {epoch + 1}/{settings.epochs}",
                   disable=not settings.progress_bar, dynamic_ncols=True, leave=False)  # fmt: skip
        step_loss = torch.zeros((), device=self.device)
        epoch_clips = 0
        try:
            while pos.batches_done < total:
                batch = next(batches)
                clips, labels = self.data.to_device(batch, self.device)
                pos.counters["bad_videos"] += int(batch["replaced"].sum())
                if pos.batches_done % accum == 0:
                    lr = self._set_lr()
                last_micro = (pos.batches_done + 1) % accum == 0
                # Gradients are averaged across ranks once per optimizer step, not per micro-batch.
                sync = self.ddp.no_sync() if self.ddp is not None and not last_micro else contextlib.nullcontext()
                with sync:
                    with autocast(self.device, self.precision):
                        loss = self.loss_fn(self.forward_model, clips, labels, self.generator)
                    step_loss += loss.detach().float() / accum
                    scaled = loss / accum
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                pos.batches_done += 1
                window.clips += clips.shape[0]
                epoch_clips += clips.shape[0]
                bar.update(1)
                if pos.batches_done % accum:
                    continue

                finite, grad_norm = self.optimizer_step(step_loss)
                pos.step += 1
                window.add_step(step_loss, finite)
                self.nonfinite.update(finite)
                if not self.optimizer_step.sync_free:
                    self._check_nonfinite(epoch)  # the step already synced: check at once
                if self.hooks.on_step_end is not None:
                    self.hooks.on_step_end(pos.step)
                step_loss = torch.zeros((), device=self.device)

                if pos.step % settings.log_every == 0 or pos.batches_done == total:
                    self._check_nonfinite(epoch)
                    mean_loss, clips_per_s = window.flush(self.context)
                    self.output.logger.log("train", step=pos.step, epoch=epoch, loss=mean_loss, lr=lr,
                                           grad_norm=float(grad_norm), clips_per_s=clips_per_s, **pos.counters)  # fmt: skip
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", clips_s=f"{clips_per_s:.1f}")
                    if summary["first_loss"] is None:
                        summary["first_loss"] = mean_loss
                    summary["last_loss"] = mean_loss

                if settings.save_every_steps and pos.step % settings.save_every_steps == 0:
                    self.save()
        finally:
            bar.close()
        return epoch_clips * self.context.world_size

    def _set_lr(self) -> float:
        lr = self.schedule(self.position.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _check_nonfinite(self, epoch: int) -> None:
        """Reads the skipped-step counts (a sync) and stops the run after too many in a row."""
        skipped, worst = self.nonfinite.read()
        if not skipped:
            return
        pos, limit = self.position, self.settings.max_nonfinite_in_row
        pos.counters["nonfinite_skipped"] += skipped
        total = pos.counters["nonfinite_skipped"]
        self.output.logger.log("nonfinite", step=pos.step, epoch=epoch, skipped=skipped, skipped_total=total)
        if worst >= limit:
            raise NonFiniteLossError(
                f"{worst} optimizer steps in a row had a non-finite loss or gradient "
                f"(train.max_nonfinite_in_row={limit}); stopped at step {pos.step}. "
                f"Checkpoints in {self.checkpoint_dir} are untouched. Try a lower optim.base_lr, "
                "optim.clip_grad, or train.precision=fp32."
            )
