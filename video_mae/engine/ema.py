"""An exponential moving average of a model's weights, saved with the run."""

from __future__ import annotations

import torch
from timm.utils import ModelEmaV3


class EmaWeights:
    """An exponential moving average of the model's weights (timm's ModelEmaV3)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema must be in (0, 1) or null, got {decay}")
        self.ema = ModelEmaV3(model, decay=decay)

    @property
    def module(self) -> torch.nn.Module:
        return self.ema.module

    def update(self, model: torch.nn.Module, step: int) -> None:
        self.ema.update(model, step=step)

    def state_dict(self) -> dict:
        return self.ema.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.ema.module.load_state_dict(state)
