"""The module a training loss runs through: the model DDP-wrapped and/or compiled."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..distributed import DistContext
from .settings import TrainSettings

if TYPE_CHECKING:
    from torch.nn.parallel import DistributedDataParallel


def wrap_for_training(
    model: nn.Module, settings: TrainSettings, context: DistContext, device: torch.device
) -> tuple[DistributedDataParallel | None, nn.Module]:
    """(the DDP wrapper, or None outside DDP; the module to call in the forward).

    State dicts still come from ``model`` itself, so checkpoints hold no wrapper prefixes
    and load anywhere. Under FSDP2 the task has already sharded ``model`` in place
    (``distributed.shard_model``), so it gets no DDP wrapper.
    """
    ddp = None
    wrapped = model
    if context.distributed and not settings.fsdp:
        from torch.nn.parallel import DistributedDataParallel  # only under torchrun

        ids = [device.index] if device.type == "cuda" else None
        ddp = wrapped = DistributedDataParallel(model, device_ids=ids)
    return ddp, torch.compile(wrapped) if settings.compile else wrapped
