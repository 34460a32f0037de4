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


def _slurm_environment() -> None:
    """Fills torchrun's variables from SLURM's when ``srun`` started the processes
    (one task per GPU) and torchrun did not: ranks from SLURM_PROCID / SLURM_NTASKS /
    SLURM_LOCALID, the first node of the job as the rendezvous host."""
    if os.environ.get("WORLD_SIZE") or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    if not os.environ.get("MASTER_ADDR"):
        nodes = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST", "")
        host = os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "")
        if nodes:
            import subprocess

            try:
                host = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True).stdout.split()[
                    0
                ]
            except (OSError, subprocess.CalledProcessError, IndexError):
                host = host or nodes.split(",")[0]
        os.environ["MASTER_ADDR"] = host or "127.0.0.1"
    # A port derived from the job id, so two jobs sharing a node do not collide.
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))


def init_distributed(device: torch.device) -> DistContext:
    """Joins the process group that torchrun (WORLD_SIZE, RANK, LOCAL_RANK,
    MASTER_ADDR/PORT) or srun (SLURM_* variables) describes; a plain process is
    rank 0 of 1 and joins nothing. NCCL on CUDA, gloo on the CPU."""
    _slurm_environment()
    world_size = _env_int("WORLD_SIZE") or 1
    if world_size == 1:
        return DistContext()
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK")
    if rank is None or local_rank is None:
        raise ValueError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: launch with torchrun or srun")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def all_reduce(tensor: torch.Tensor, context: DistContext, op: str = "sum") -> torch.Tensor:
    """In place over all ranks ("sum", "min" or "max"); a no-op in one process."""
    if context.distributed:
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
    return tensor


def all_gather_objects(obj: Any, context: DistContext) -> list[Any]:
    """Every rank's ``obj`` on every rank, in rank order."""
    if not context.distributed:
        return [obj]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()


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


def shard_model(model: torch.nn.Module) -> None:
    """FSDP2: shards every transformer block, then the rest of the model, over the
    ranks (each rank keeps 1/N of the weights, gradients and optimizer state), for
    models too large to replicate. Call after the weights are loaded and before the
    optimizer is built."""
    from torch.distributed.fsdp import fully_shard

    from .models.layers import Block

    for module in list(model.modules()):
        if isinstance(module, Block):
            fully_shard(module)
    fully_shard(model)
