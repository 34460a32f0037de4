"""AdamW with VideoMAE's parameter groups: no weight decay on norms, biases and tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


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

    def __post_init__(self) -> None:
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

    def scaled_lr(self, global_batch: int) -> tuple[float, float]:
        """(peak lr, final lr) for a global batch of ``global_batch`` clips."""
        return self.base_lr * global_batch / 256, self.min_lr * global_batch / 256


# Parameters whose names end like this are tokens or fixed tables: never decayed.
NO_DECAY_NAMES: Sequence[str] = ("pos_embed", "cls_token", "mask_token")


def weight_decay_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices and convolution kernels get ``weight_decay``; 1-D
    parameters (norm scales, biases, q/v biases, layer scales) and tokens get none."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.split(".")[-1] in NO_DECAY_NAMES:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_adamw(model: nn.Module, settings: OptimSettings, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`weight_decay_param_groups`. The fused kernel is used on
    CUDA unless ``settings.fused`` says otherwise."""
    fused = settings.fused if settings.fused is not None else device.type == "cuda"
    return torch.optim.AdamW(
        weight_decay_param_groups(model, settings.weight_decay),
        lr=lr,
        betas=tuple(settings.betas),
        eps=settings.eps,
        fused=fused,
    )
