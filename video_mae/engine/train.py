"""The training loop: steps, accumulation, mixed precision, clipping, schedule,
non-finite handling, logging and checkpoints. No Hydra below this line."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint
from ..distributed import DistContext, all_gather_objects, all_reduce, barrier
from ..logging import RunLogger, read_log_records
from .settings import TrainSettings  # noqa: F401  (re-exported: older configs and checkpoints name it here)
from .device import autocast, make_grad_scaler
from .schedule import WarmupCosineSchedule

log = logging.getLogger(__name__)


# What a checkpoint for evaluation or export keeps of the training state: the weights and what
# rebuilding and judging them needs. The optimizer state (twice the weights, for AdamW), the
# scaler and the RNG states only serve a resume, which always starts from last.pt.
EVALUATION_KEYS = ("model", "config", "extras", "epoch", "step", "counters")


class NonFiniteLossError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


# (model, clips [B, C, T, H, W] on the device, labels [B] on the device, generator) -> scalar loss
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
# (epoch, start_batch) -> iterable of batches (dicts with "video", "label", "replaced")
LoaderFactory = Callable[[int, int], Any]


class Trainer:
    """Runs epochs of optimizer steps and owns everything a resume needs.

    The loss function gets a ``torch.Generator`` on the device (seeded from
    ``settings.seed``) for its own randomness, such as masks; its state is saved
    in checkpoints with the global RNG states, the optimizer, the scaler and the
    position in the data, so a resumed run continues exactly where it stopped.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: WarmupCosineSchedule,
        loss_fn: LossFn,
        loaders: LoaderFactory,
        micro_batches_per_epoch: int,
        settings: TrainSettings,
        device: torch.device,
        precision: str,
        clip_grad: float | None,
        run_dir: Path,
        logger: RunLogger,
        config: dict,
        on_epoch_end: Callable[[int], None] | None = None,
        on_step_end: Callable[[int], None] | None = None,
        extras: dict[str, Any] | None = None,
        context: DistContext = DistContext(),
        normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.accum_steps = settings.resolved_accum_steps(context.world_size)
        if micro_batches_per_epoch % self.accum_steps:
            raise ValueError("micro_batches_per_epoch must be a multiple of the accumulation steps")
        self.model = model
        self.context = context
        # uint8 clips from the loader are normalised here, on the device.
        self.normalizer = normalizer
        # The loss runs through the DDP-wrapped and/or compiled module; state dicts
        # come from the plain one, so checkpoints load anywhere.
        # Under FSDP2 the task has sharded the model in place (shard_model).
        self.fsdp = settings.fsdp and context.distributed
        wrapped = model
        if context.distributed and not self.fsdp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            wrapped = DistributedDataParallel(model, device_ids=ids)
        self.ddp = wrapped if wrapped is not model else None
        self.forward_model = torch.compile(wrapped) if settings.compile else wrapped
        self.optimizer = optimizer
        self.schedule = schedule
        self.loss_fn = loss_fn
        self.loaders = loaders
        self.micro_batches_per_epoch = micro_batches_per_epoch
        self.settings = settings
        self.device = device
        self.precision = precision
        self.clip_grad = clip_grad
        self.run_dir = Path(run_dir)
        self.logger = logger
        self.config = config
        self.on_epoch_end = on_epoch_end
        self.on_step_end = on_step_end
        # Objects with state_dict()/load_state_dict() saved with the run (mixup RNG, EMA, best score).
        self.extras = dict(extras or {})
        self.scaler = make_grad_scaler(device, precision)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(settings.seed)
        # Position: completed epochs, micro-batches done in the current epoch, optimizer steps.
        self.epoch = 0
        self.batches_done = 0
        self.step = 0
        self.counters = {"nonfinite_skipped": 0, "bad_videos": 0}
        self._epoch_clips = 0  # clips this rank trained on in the current epoch (the epoch line)
        self._nonfinite = _NonFiniteTracker(device)
        # With the fused AdamW (the default on CUDA) and no loss scaler, non-finite
        # steps are skipped on the device and counted at log points (no sync per step).
        self.sync_free = self.scaler is None and all(g.get("fused") for g in optimizer.param_groups)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def finished(self) -> bool:
        return self.epoch >= self.settings.epochs

    # --- checkpoints -------------------------------------------------------

    def _rng_state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def state_dict(self) -> dict:
        """The whole training state. Collective under torchrun: every rank's RNG
        states are gathered (call it on all ranks; rank 0 writes it)."""
        rng = self._rng_state()
        per_rank = all_gather_objects({k: v.cpu() for k, v in rng.items()}, self.context)
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
                get_optimizer_state_dict,
            )

            # Gathered into full tensors: the checkpoint loads in a single process.
            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            model_state = get_model_state_dict(self.model, options=options)
            optimizer_state = get_optimizer_state_dict(self.model, self.optimizer, options=options)
        else:
            model_state, optimizer_state = self.model.state_dict(), self.optimizer.state_dict()
        return {
            "model": model_state,
            "optimizer": optimizer_state,
            "fsdp": self.fsdp,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "step": self.step,
            "counters": dict(self.counters),
            "rng": rng,
            "rng_per_rank": per_rank,
            "config": self.config,
            "extras": {name: extra.state_dict() for name, extra in self.extras.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if bool(state.get("fsdp")) != self.fsdp:
            raise ValueError(
                f"the checkpoint was written with train.fsdp={bool(state.get('fsdp'))} (its optimizer state has that "
                "layout); resume with the same setting"
            )
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            options = StateDictOptions(full_state_dict=True)
            set_model_state_dict(self.model, state["model"], options=options)
            set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"], options=options)
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])
        self.step = int(state["step"])
        self.counters.update(state.get("counters", {}))
        rng = state["rng"]
        per_rank = state.get("rng_per_rank") or []
        if len(per_rank) == self.context.world_size:
            rng = per_rank[self.context.rank]  # each rank continues its own streams
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        for name, extra in self.extras.items():
            if name in state.get("extras", {}):
                extra.load_state_dict(state["extras"][name])

    def save(self, name: str = "last.pt", evaluation_copy: str | None = None) -> Path:
        """Writes checkpoints/<name> on rank 0 (all ranks must call it); with
        ``evaluation_copy``, also checkpoints/<evaluation_copy> holding only EVALUATION_KEYS
        of the same state (a fine-tuning's best.pt)."""
        path = self.checkpoint_dir / name
        state = self.state_dict()
        if self.context.is_main:
            save_checkpoint(state, path)
            if evaluation_copy is not None:
                save_checkpoint({key: state[key] for key in EVALUATION_KEYS}, self.checkpoint_dir / evaluation_copy)
        barrier(self.context)
        return path

    def resume(self, path: Path) -> None:
        self.load_state_dict(load_checkpoint(path))
        self.logger.log("resume", step=self.step, epoch=self.epoch, batches_done=self.batches_done, path=str(path))

    # --- training ----------------------------------------------------------

    def _set_lr(self) -> float:
        lr = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _optimizer_step(self, step_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips, checks and applies the accumulated gradients; a step whose loss (or,
        outside fp16, gradient) is not finite leaves the weights alone. Returns
        (finite, grad norm) as device tensors."""
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        max_norm = self.clip_grad if self.clip_grad is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP2
            grad_norm = grad_norm.full_tensor()
        finite = torch.isfinite(step_loss)
        if self.scaler is None:
            # With fp16 an overflowing gradient is normal and the scaler skips it itself.
            finite = finite & torch.isfinite(grad_norm)
        if self.context.distributed:
            # One rank's non-finite loss skips the step on every rank, or they would diverge.
            finite = all_reduce(finite.to(torch.int32), self.context, "min").bool()
        if self.sync_free:
            # The fused AdamW kernel skips its update where found_inf is non-zero, so
            # the decision stays on the device: no CPU-GPU sync inside the step.
            self.optimizer.found_inf = (~finite).float()
            self.optimizer.step()
            del self.optimizer.found_inf
        elif bool(finite.item()):  # CPU-GPU sync point, once per optimizer step
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
            else:
                self.optimizer.step()
        if self.scaler is not None:
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return finite, grad_norm

    def _check_nonfinite(self, epoch: int) -> None:
        """Reads the skipped-step counts (a sync) and stops the run after too many in a row."""
        skipped, worst = self._nonfinite.read()
        if not skipped:
            return
        self.counters["nonfinite_skipped"] += skipped
        self.logger.log("nonfinite", step=self.step, epoch=epoch, skipped=skipped, skipped_total=self.counters["nonfinite_skipped"])
        limit = self.settings.max_nonfinite_in_row
        if worst >= limit:
            raise NonFiniteLossError(
                f"{worst} optimizer steps in a row had a non-finite loss or gradient "
                f"(train.max_nonfinite_in_row={limit}); stopped at step {self.step}. "
                f"Checkpoints in {self.checkpoint_dir} are untouched. Try a lower optim.base_lr, "
                "optim.clip_grad, or train.precision=fp32."
            )

    def fit(self) -> dict:
        """Trains until ``settings.epochs``; returns a summary."""
        self.model.train()
        window = _LogWindow(self.device)
        summary: dict[str, Any] = {"first_loss": None, "last_loss": None}
        started, first_epoch = time.perf_counter(), self.epoch
        while not self.finished:
            epoch = self.epoch
            epoch_start, self._epoch_clips = time.perf_counter(), 0
            self._train_epoch(epoch, window, summary)
            self.epoch, self.batches_done = epoch + 1, 0
            if self.logger.enabled:
                clips = self._epoch_clips * self.context.world_size
                self._report_epoch(epoch, summary, time.perf_counter() - epoch_start, clips, started, first_epoch)
            path = self.save()
            if self.settings.save_every_epochs and self.epoch % self.settings.save_every_epochs == 0:
                self.save(f"epoch_{self.epoch:04d}.pt")
            self.logger.log("epoch", step=self.step, epoch=epoch, checkpoint=str(path), **self.counters)
            if self.on_epoch_end is not None:
                # Visualisation must not change the training RNG streams.
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    self.on_epoch_end(epoch)
                self.model.train()
        # The run's first and last logged loss, from the log's standing records: a resumed or
        # merely reopened run has logged only part of the run (or nothing) in this process.
        logged = read_log_records(self.logger.path).get("train", []) if self.logger.enabled else []
        losses = [r["loss"] for r in logged if isinstance(r.get("loss"), (int, float))]
        if losses:
            summary = {**summary, "first_loss": losses[0], "last_loss": losses[-1]}
        return {**summary, "step": self.step, "epochs": self.epoch, **self.counters}

    def _report_epoch(self, epoch: int, summary: dict, seconds: float, clips: int, started: float, first_epoch: int) -> None:
        """One kept console line per epoch (the progress bar of an epoch disappears)."""
        elapsed = time.perf_counter() - started
        done = self.epoch - first_epoch
        remaining = elapsed / max(done, 1) * (self.settings.epochs - self.epoch)
        loss = summary.get("last_loss")
        log.info(
            "epoch %d/%d: train loss %s, lr %.2e, %.1f clips/s, elapsed %s, ETA %s",
            epoch + 1, self.settings.epochs, f"{loss:.4f}" if loss is not None else "n/a",
            self.optimizer.param_groups[0]["lr"], clips / max(seconds, 1e-9), _clock(elapsed), _clock(remaining),
        )  # fmt: skip

    def _train_epoch(self, epoch: int, window: "_LogWindow", summary: dict[str, Any]) -> None:
        settings = self.settings
        accum = self.accum_steps
        batches = iter(self.loaders(epoch, self.batches_done))
        bar = tqdm(
            total=self.micro_batches_per_epoch,
            initial=self.batches_done,
            desc=f"epoch {epoch + 1}/{settings.epochs}",
            disable=not settings.progress_bar,
            dynamic_ncols=True,
            leave=False,
        )
        step_loss = torch.zeros((), device=self.device)
        try:
            while self.batches_done < self.micro_batches_per_epoch:
                batch = next(batches)
                clips = batch["video"].to(self.device, non_blocking=True).flatten(0, 1)
                if self.normalizer is not None:
                    clips = self.normalizer(clips)
                labels = batch["label"].to(self.device, non_blocking=True)
                labels = labels.repeat_interleave(clips.shape[0] // labels.shape[0])
                self.counters["bad_videos"] += int(batch["replaced"].sum())
                if self.batches_done % accum == 0:
                    lr = self._set_lr()
                last_micro = (self.batches_done + 1) % accum == 0
                # Gradients are averaged across ranks once per optimizer step, not per micro-batch.
                sync = self.ddp.no_sync() if self.ddp is not None and not last_micro else contextlib.nullcontext()
                with sync:
                    with autocast(self.device, self.precision):
                        loss = self.loss_fn(self.forward_model, clips, labels, self.generator)
                    step_loss += loss.detach().float() / accum
                    scaled = loss / accum
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                self.batches_done += 1
                window.clips += clips.shape[0]
                self._epoch_clips += clips.shape[0]
                bar.update(1)
                if self.batches_done % accum:
                    continue

                finite, grad_norm = self._optimizer_step(step_loss)
                self.step += 1
                window.add_step(step_loss, finite)
                self._nonfinite.update(finite)
                if not self.sync_free:
                    self._check_nonfinite(epoch)  # the step already synced: check at once
                if self.on_step_end is not None:
                    self.on_step_end(self.step)
                step_loss = torch.zeros((), device=self.device)

                if self.step % settings.log_every == 0 or self.batches_done == self.micro_batches_per_epoch:
                    self._check_nonfinite(epoch)
                    mean_loss, clips_per_s = window.flush(self.context)
                    self.logger.log(
                        "train",
                        step=self.step,
                        epoch=epoch,
                        loss=mean_loss,
                        lr=lr,
                        grad_norm=float(grad_norm),
                        clips_per_s=clips_per_s,
                        **self.counters,
                    )
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", clips_s=f"{clips_per_s:.1f}")
                    if summary["first_loss"] is None:
                        summary["first_loss"] = mean_loss
                    summary["last_loss"] = mean_loss

                if settings.save_every_steps and self.step % settings.save_every_steps == 0:
                    self.save()
        finally:
            bar.close()

def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _NonFiniteTracker:
    """Counts skipped (non-finite) steps on the device; ``read`` is the only sync."""

    def __init__(self, device: torch.device) -> None:
        self.skipped = torch.zeros((), dtype=torch.long, device=device)
        self.in_row = torch.zeros((), dtype=torch.long, device=device)
        self.worst = torch.zeros((), dtype=torch.long, device=device)

    def update(self, finite: torch.Tensor) -> None:
        bad = (~finite).long()
        self.skipped += bad
        self.in_row = (self.in_row + 1) * bad
        self.worst = torch.maximum(self.worst, self.in_row)

    def read(self) -> tuple[int, int]:
        """(steps skipped since the last read, longest run of skipped steps since then)."""
        skipped, worst = int(self.skipped), int(self.worst)
        self.skipped.zero_()
        self.worst.copy_(self.in_row)
        return skipped, worst


class _LogWindow:
    """Loss and throughput since the last log record. The loss is summed on the
    device; reading it (``flush``) is the only sync, once per log record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.loss = torch.zeros((), device=device)
        self.steps = torch.zeros((), device=device)
        self.clips = 0
        self.start = time.perf_counter()

    def add_step(self, loss: torch.Tensor, finite: torch.Tensor) -> None:
        """Counts the step's loss only if it was applied (device ops, no sync)."""
        self.loss += torch.where(finite, loss, torch.zeros_like(loss))
        self.steps += finite.float()

    def flush(self, context: DistContext = DistContext()) -> tuple[float, float]:
        """(mean loss of the applied steps, clips per second), over all ranks, since the last flush."""
        elapsed = time.perf_counter() - self.start
        totals = torch.stack([self.loss, self.steps, torch.tensor(float(self.clips), device=self.loss.device)])
        loss, steps, clips = all_reduce(totals, context, "sum").tolist()
        steps /= context.world_size  # every rank counts the same applied steps
        mean_loss = loss / context.world_size / steps if steps else float("nan")
        clips_per_s = clips / elapsed if elapsed > 0 else 0.0
        self.loss.zero_()
        self.steps.zero_()
        self.clips, self.start = 0, time.perf_counter()
        return mean_loss, clips_per_s
