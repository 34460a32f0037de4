"""The engine's config sections as plain, validated settings: ``train``, ``optim``, ``eval``.

Free of torch, so that a command can check a config (types, ranges) in a second, before
it imports the model code; ``engine.train``, ``engine.optim`` and ``engine.evaluate``
re-export them under their old names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config_types import check_types


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` config section.

    batch_size: videos per device per micro-batch (each gives data.clips_per_video clips).
    accum_steps: micro-batches per optimizer step.
    log_every: optimizer steps between log records.
    save_every_steps: also write last.pt every this many optimizer steps (0: only at epoch ends).
    save_every_epochs: keep checkpoints/epoch_NNNN.pt every this many epochs (0: never).
    max_nonfinite_in_row: stop after this many consecutive skipped (non-finite) steps.
    resume: continue from checkpoints/last.pt when the run directory has one.
    tensorboard, wandb: mirror the numeric log records to TensorBoard / Weights & Biases.
    compile: run the model through torch.compile (checkpoints keep the plain module).
    global_batch: videos per optimizer step over all ranks; when set, accum_steps is
        derived from it (global_batch / (batch_size x ranks)), so one config means the
        same recipe on 1 or 64 GPUs.
    fsdp: under torchrun, shard the model over the ranks (FSDP2) instead of replicating
        it (DDP); for ViT-L/H/g. Checkpoints still hold full weights.
    """

    epochs: int = 10
    batch_size: int = 8
    accum_steps: int = 1
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    log_every: int = 10
    save_every_steps: int = 0
    save_every_epochs: int = 0
    max_nonfinite_in_row: int = 20
    resume: bool = True
    progress_bar: bool = True
    tensorboard: bool = False
    wandb: bool = False
    compile: bool = False
    global_batch: int | None = None
    fsdp: bool = False

    def __post_init__(self) -> None:
        check_types(self, "train")
        for key in ("epochs", "batch_size", "accum_steps", "log_every", "max_nonfinite_in_row"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("save_every_steps", "save_every_epochs"):
            if getattr(self, key) < 0:
                raise ValueError(f"train.{key} must be >= 0, got {getattr(self, key)}")

    def resolved_accum_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on ``world_size`` ranks."""
        if self.global_batch is None:
            return self.accum_steps
        per_step = self.batch_size * world_size
        if self.global_batch % per_step:
            raise ValueError(
                f"train.global_batch={self.global_batch} is not a multiple of train.batch_size x ranks = {self.batch_size} x {world_size}"
            )
        return self.global_batch // per_step


@dataclass(frozen=True)
class OptimSettings:
    """The ``optim`` config group.

    base_lr and min_lr are per 256 clips: the learning rates used are
    ``base_lr * global_batch / 256`` and ``min_lr * global_batch / 256`` (VideoMAE's rule).
    clip_grad: max global gradient norm, or None for no clipping.
    """

    base_lr: float = 1.5e-4
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_epochs: float = 40.0
    clip_grad: float | None = None
    fused: bool | None = None
    layer_decay: float | None = None

    def __post_init__(self) -> None:
        check_types(self, "optim")
        if self.base_lr <= 0:
            raise ValueError(f"optim.base_lr must be positive, got {self.base_lr}")
        if not 0 <= self.min_lr <= self.base_lr:
            raise ValueError(f"optim.min_lr must be in [0, optim.base_lr], got {self.min_lr}")
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.warmup_epochs < 0:
            raise ValueError(f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ValueError(f"optim.clip_grad must be positive or null, got {self.clip_grad}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"optim.layer_decay must be in (0, 1] or null, got {self.layer_decay}")

    def scaled_lr(self, global_batch: int) -> tuple[float, float]:
        """(peak lr, final lr) for a global batch of ``global_batch`` clips."""
        return self.base_lr * global_batch / 256, self.min_lr * global_batch / 256


@dataclass(frozen=True)
class EvalSettings:
    """The ``eval`` config section: ``num_clips`` evenly spaced clips times ``num_crops``
    crops along the long side per video (VideoMAE: 5 x 3 on Kinetics, 2 x 3 on SSv2),
    after resizing the short side to ``short_side`` (None: the crop size).
    ``batch_size`` videos are decoded per loader batch; ``clips_per_forward`` views
    go through the model at once. ``use_ema`` evaluates the EMA weights of a run."""

    num_clips: int = 5
    num_crops: int = 3
    short_side: int | None = None
    batch_size: int = 2
    clips_per_forward: int = 32
    use_ema: bool = False

    def __post_init__(self) -> None:
        check_types(self, "eval")
        for key in ("num_clips", "num_crops", "batch_size", "clips_per_forward"):
            if getattr(self, key) < 1:
                raise ValueError(f"eval.{key} must be at least 1, got {getattr(self, key)}")
