"""The training state as one checkpoint dict, and back: weights, optimizer, loss scaler,
the run's position, RNG streams and the extras a task saves with the run.

The dict holds tensors and plain containers only, so ``torch.load(weights_only=True)``
reads it. Its keys are the checkpoint format: checkpoints written by older versions
must keep resuming, so keys are only ever added, never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from ..distributed import DistContext, all_gather_objects

# What a checkpoint for evaluation or export keeps of the training state: the weights and what
# rebuilding and judging them needs. The optimizer state (twice the weights, for AdamW), the
# scaler and the RNG states only serve a resume, which always starts from last.pt.
EVALUATION_KEYS = ("model", "config", "extras", "epoch", "step", "counters")


class Stateful(Protocol):
    """An extra saved with the run (mixup RNG, EMA weights, best score)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Position:
    """Where a run stands: completed epochs, micro-batches done in the current epoch,
    optimizer steps, and the run's running counts."""

    epoch: int = 0
    batches_done: int = 0
    step: int = 0
    counters: dict[str, int] = field(default_factory=lambda: {"nonfinite_skipped": 0, "bad_videos": 0})


@dataclass(frozen=True)
class TrainingState:
    """The objects a resume restores besides the position, and how they go into the
    checkpoint dict and come out of it.

    ``fsdp``: the model is sharded in place (FSDP2); its weights and optimizer state are
    gathered into full tensors on the way out, so the checkpoint loads in one process,
    and the optimizer state keeps that layout, so a resume needs the same setting.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    generator: torch.Generator
    extras: Mapping[str, Stateful]
    device: torch.device
    context: DistContext
    fsdp: bool

    def state_dict(self, position: Position, config: dict) -> dict:
        """The whole training state. Collective under torchrun: every rank's RNG states
        are gathered (call it on all ranks; rank 0 writes it)."""
        rng = self._rng_state()
        per_rank = all_gather_objects({k: v.cpu() for k, v in rng.items()}, self.context)
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
                get_optimizer_state_dict,
            )

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
            "epoch": position.epoch,
            "batches_done": position.batches_done,
            "step": position.step,
            "counters": dict(position.counters),
            "rng": rng,
            "rng_per_rank": per_rank,
            "config": config,
            "extras": {name: extra.state_dict() for name, extra in self.extras.items()},
        }

    def load_state_dict(self, state: dict, position: Position) -> None:
        """Restores the objects from ``state`` and sets ``position`` (in place) to where it stopped."""
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
        position.epoch = int(state["epoch"])
        position.batches_done = int(state["batches_done"])
        position.step = int(state["step"])
        # Update, not replace: a counter added since the checkpoint was written starts at 0.
        position.counters.update(state.get("counters", {}))
        self._load_rng_state(state)
        for name, extra in self.extras.items():
            if name in state.get("extras", {}):
                extra.load_state_dict(state["extras"][name])

    def _rng_state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _load_rng_state(self, state: dict) -> None:
        rng = state["rng"]
        # A checkpoint without per-rank streams (older ones), or from another number of
        # ranks, gives every rank the streams of the rank that wrote it.
        per_rank = state.get("rng_per_rank") or []
        if len(per_rank) == self.context.world_size:
            rng = per_rank[self.context.rank]  # each rank continues its own streams
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
