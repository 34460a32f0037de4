"""Process groups for runs launched by torchrun (or srun): who am I, who writes files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(*names: str) -> int | None:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return None


def init_distributed(device: torch.device) -> DistContext:
    """Joins the process group that torchrun (WORLD_SIZE, RANK, LOCAL_RANK,
    MASTER_ADDR/PORT) describes; a plain process is rank 0 of 1 and joins nothing.
    NCCL on CUDA, gloo on the CPU."""
    world_size = _env_int("WORLD_SIZE") or 1
    if world_size == 1:
        return DistContext()
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK")
    if rank is None or local_rank is None:
        raise ValueError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: launch with torchrun")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def local_device(device: torch.device, context: DistContext) -> torch.device:
    """The GPU of this process (cuda:LOCAL_RANK) when running on CUDA, else ``device``."""
    if device.type == "cuda" and context.distributed:
        torch.cuda.set_device(context.local_rank)
        return torch.device("cuda", context.local_rank)
    return device


def gather_to_main(obj: Any, context: DistContext) -> list[Any] | None:
    """Every rank's ``obj`` on the main rank (in rank order), None elsewhere."""
    if not context.distributed:
        return [obj]
    gathered: list[Any] | None = [None] * context.world_size if context.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def broadcast_from_main(obj: Any, context: DistContext) -> Any:
    """The main rank's ``obj`` on every rank."""
    if not context.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish_distributed(context: DistContext) -> None:
    """Leaves the process group (torchrun warns about groups left open)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
