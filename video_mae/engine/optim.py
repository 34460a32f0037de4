"""AdamW with VideoMAE's parameter groups: no weight decay on norms, biases and tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..validation import check_types


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


# Parameters whose names end like this are tokens or fixed tables: never decayed.
NO_DECAY_NAMES: Sequence[str] = ("pos_embed", "cls_token", "mask_token")


def _decays(name: str, param: torch.Tensor) -> bool:
    return param.ndim > 1 and name.split(".")[-1] not in NO_DECAY_NAMES


def weight_decay_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices and convolution kernels get ``weight_decay``; 1-D
    parameters (norm scales, biases, q/v biases, layer scales) and tokens get none."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if _decays(name, param) else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def layer_id(name: str, num_blocks: int) -> int:
    """Depth of a parameter for layer-wise decay: 0 for the patch embedding, i + 1
    for encoder block i, num_blocks + 1 for everything after the encoder blocks."""
    if name.startswith("encoder.patch_embed."):
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    return num_blocks + 1


def layer_decay_param_groups(model: nn.Module, weight_decay: float, layer_decay: float) -> list[dict]:
    """BEiT / VideoMAE layer-wise learning-rate decay: parameters at depth d get
    ``lr_scale = layer_decay ** (num_blocks + 1 - d)``, so the head learns at the
    full rate and the patch embedding at the smallest. Weight decay as in
    :func:`weight_decay_param_groups`. ``model.encoder.blocks`` gives the depth."""
    num_blocks = len(model.encoder.blocks)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth, decays = layer_id(name, num_blocks), _decays(name, param)
        group = groups.setdefault(
            (depth, decays),
            {
                "params": [],
                "weight_decay": weight_decay if decays else 0.0,
                "lr_scale": layer_decay ** (num_blocks + 1 - depth),
            },
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def build_adamw(model: nn.Module, settings: OptimSettings, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`weight_decay_param_groups`, or :func:`layer_decay_param_groups`
    when ``settings.layer_decay`` is set. The fused kernel is used on CUDA unless
    ``settings.fused`` says otherwise."""
    fused = settings.fused if settings.fused is not None else device.type == "cuda"
    if settings.layer_decay is not None:
        groups = layer_decay_param_groups(model, settings.weight_decay, settings.layer_decay)
    else:
        groups = weight_decay_param_groups(model, settings.weight_decay)
    return torch.optim.AdamW(
        groups,
        lr=lr,
        betas=tuple(settings.betas),
        eps=settings.eps,
        fused=fused,
    )
