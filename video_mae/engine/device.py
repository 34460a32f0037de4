"""Where and in which number format a run computes."""

from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)

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


# On the CPU, bf16 autocast pays only where the matmuls are wide enough for the bf16 units
# to outrun the casts autocast adds around every op. Measured on this project's 2-core CPU
# (avx512_bf16), `vmae-bench models`, bf16 / fp32 clips/s of the pretraining step: 128 wide
# (the demo ViT) 0.54x, ViT-S (384) 1.40x, ViT-B (768) 1.25x; embedding forward 1.07x,
# 1.51x, 1.82x. ViT-S pretraining loss curves in bf16 and fp32 agree within 2e-5 per step.
# On a 2-core Xeon with AMX-BF16: ViT-Ti (192) step 0.93x, ViT-S 1.51x, ViT-B 1.43x.
CPU_BF16_MIN_WIDTH = 384


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # absent in older torch
    if capabilities is None:
        return False
    found = capabilities()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def resolve_precision(name: str, device: torch.device, width: int | None = None) -> str:
    """'auto' -> bf16 on a GPU that supports it, and on a CPU with native bf16 when the
    model is at least CPU_BF16_MIN_WIDTH wide (``width``: the encoder's embedding width);
    else fp32."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        # Honoured (the numbers are the same), but PyTorch then multiplies bf16 in its
        # fallback kernels. Measured on a 2-core AVX2 EPYC, `vmae-bench models --model
        # vit_tiny`: our pretraining step 1.6 clips/s in bf16 against 11.6 in fp32, the
        # embedding forward 4.1 against 15.3; a bf16 linear layer ran at 18 GFLOP/s, 153 in fp32.
        log.warning(
            "precision=bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX-BF16): PyTorch emulates it, "
            "measured 3.7-7x slower than fp32 on such a CPU; precision=auto (or fp32) is the fast choice here"
        )
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    if device.type == "cpu" and width is not None and width >= CPU_BF16_MIN_WIDTH and cpu_has_bf16():
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
