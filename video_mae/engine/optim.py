"""AdamW with VideoMAE's parameter groups: no weight decay on norms, biases and tokens."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .settings import OptimSettings  # noqa: F401  (re-exported: older configs and checkpoints name it here)

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


def fused_adamw_default(device: torch.device) -> bool:
    """Whether AdamW's fused kernel is the default on ``device``: on CUDA, and on the CPU
    from torch 2.4 (its first CPU kernel). On the CPU it is one vectorised pass over each
    parameter instead of about ten elementwise ops: a ViT-S MAE's AdamW step (24M
    parameters, 2 cores) took 16 ms fused, 75 ms in the per-parameter loop torch otherwise
    picks on the CPU, 56 ms with foreach."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.torch_version.TorchVersion(torch.__version__) >= (2, 4)


def build_adamw(model: nn.Module, settings: OptimSettings, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`weight_decay_param_groups`, or :func:`layer_decay_param_groups`
    when ``settings.layer_decay`` is set. The fused kernel is used where
    :func:`fused_adamw_default` says unless ``settings.fused`` says otherwise."""
    fused = settings.fused if settings.fused is not None else fused_adamw_default(device)
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
