"""Mixup and CutMix on video batches (timm's implementation, one box through all frames)."""

from __future__ import annotations

import torch

from ..seeding import seeded_global_rng


class VideoMixup:
    """timm's ``Mixup`` for clips [B, C, T, H, W]: frames are folded into channels
    so that a CutMix box covers the same pixels in every frame, and the result is
    unfolded again. Targets come back as soft labels with ``label_smoothing``.

    timm draws from the global NumPy RNG; this wrapper seeds it per batch from its
    own generator (saved with ``state_dict``) and restores it, so a resumed run
    mixes the same way.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        seed: int = 0,
    ) -> None:
        from timm.data import Mixup  # timm.data only for runs that mix (it brings timm's data pipeline)

        if mixup_alpha < 0 or cutmix_alpha < 0 or not 0 <= prob <= 1 or not 0 <= switch_prob <= 1:
            raise ValueError(
                f"mixup: alphas must be >= 0 and probabilities in [0, 1], got mixup_alpha={mixup_alpha}, "
                f"cutmix_alpha={cutmix_alpha}, prob={prob}, switch_prob={switch_prob}"
            )
        self.active = (mixup_alpha > 0 or cutmix_alpha > 0) and prob > 0
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self._mixup = Mixup(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            prob=prob,
            switch_prob=switch_prob,
            mode="batch",
            label_smoothing=label_smoothing,
            num_classes=num_classes,
        )
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns mixed clips and soft targets [B, num_classes]."""
        if clips.shape[0] % 2:
            raise ValueError(f"mixup needs an even number of clips per step, got {clips.shape[0]}")
        b, c, t, h, w = clips.shape
        seed = int(torch.randint(2**31, (1,), generator=self.generator))
        with seeded_global_rng(seed):
            folded, targets = self._mixup(clips.reshape(b, c * t, h, w).clone(), labels)
        return folded.reshape(b, c, t, h, w), targets

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


__all__ = ["VideoMixup"]
