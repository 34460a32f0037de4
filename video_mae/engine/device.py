"""Where and in which number format a run computes."""

from __future__ import annotations

import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else the CPU. 'cuda' without a GPU is an error."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"train.device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device={name} but CUDA is not available here; use train.device=auto or cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> bf16 on a GPU that supports it, else fp32."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The one autocast context of a step (a no-op in fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 only: bf16 has fp32's range and needs no loss scaling."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
