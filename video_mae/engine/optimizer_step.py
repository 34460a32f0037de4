"""One optimizer step from accumulated gradients: unscale, clip, check, apply, update
(MAE's ``NativeScalerWithGradNormCount``, plus skipping non-finite steps)."""

from __future__ import annotations

import torch

from ..distributed import DistContext, all_reduce


class GuardedOptimizerStep:
    """Applies the accumulated gradients unless the step's loss (or, outside fp16, its
    gradient) is not finite; then the weights stay as they were.

    ``sync_free``: with the fused AdamW (the default on CUDA) and no loss scaler, the
    skip is decided on the device, so a step has no CPU-GPU sync and the caller counts
    skipped steps at log points instead of after every step.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        clip_grad: float | None,
        context: DistContext,
    ) -> None:
        self.optimizer, self.scaler, self.clip_grad, self.context = optimizer, scaler, clip_grad, context
        self.sync_free = scaler is None and all(g.get("fused") for g in optimizer.param_groups)

    def __call__(self, step_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(finite, grad norm) as device tensors; the gradients are zeroed afterwards."""
        optimizer, scaler = self.optimizer, self.scaler
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if scaler is not None:
            scaler.unscale_(optimizer)
        max_norm = self.clip_grad if self.clip_grad is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP2
            grad_norm = grad_norm.full_tensor()
        finite = torch.isfinite(step_loss)
        if scaler is None:
            # With fp16 an overflowing gradient is normal and the scaler skips it itself.
            finite = finite & torch.isfinite(grad_norm)
        if self.context.distributed:
            # One rank's non-finite loss skips the step on every rank, or they would diverge.
            finite = all_reduce(finite.to(torch.int32), self.context, "min").bool()
        if self.sync_free:
            # The fused AdamW kernel skips its update where found_inf is non-zero, so
            # the decision stays on the device: no CPU-GPU sync inside the step.
            optimizer.found_inf = (~finite).float()
            optimizer.step()
            del optimizer.found_inf
        elif bool(finite.item()):  # CPU-GPU sync point, once per optimizer step
            if scaler is not None:
                scaler.step(optimizer)
            else:
                optimizer.step()
        if scaler is not None:
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return finite, grad_norm
