"""How a state dict differs from the one a model expects, in words for an error message.

Shared by checkpoint conversion and by loading a pretrained encoder, so that both
name leftover, missing and mis-shaped weights the same way."""

from __future__ import annotations

from collections.abc import Mapping

import torch

SHOWN_KEYS = 12  # keys listed per kind of problem; the count says how many there are
SHOWN_SHAPES = 6


def _listing(keys: list[str], shown: int, separator: str = ", ") -> str:
    more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
    return separator.join(keys[:shown]) + more


def state_dict_problems(state: Mapping[str, torch.Tensor], wanted: Mapping[str, torch.Tensor]) -> list[str]:
    """One phrase per kind of difference between ``state`` and ``wanted``
    (unexpected keys, missing keys, shape mismatches); empty when they fit."""
    unexpected = sorted(set(state) - set(wanted))
    missing = sorted(key for key in wanted if key not in state)
    shapes = [
        f"{key}: {list(state[key].shape)} vs {list(value.shape)}"
        for key, value in wanted.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = []
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected, SHOWN_KEYS)}")
    if missing:
        problems.append(f"missing keys: {_listing(missing, SHOWN_KEYS)}")
    if shapes:
        problems.append(f"shape mismatches (checkpoint vs model): {_listing(shapes, SHOWN_SHAPES, '; ')}")
    return problems


class StateMismatch(ValueError):
    """A state dict that does not fit the model its config describes."""


def load_fitting(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)``, or one error that names ``source`` and summarises
    the difference (instead of PyTorch's line per key)."""
    problems = state_dict_problems(state, model.state_dict())
    if problems:
        raise StateMismatch(f"{source}: the weights do not fit the model its config describes: {'; '.join(problems)}")
    model.load_state_dict(state)
