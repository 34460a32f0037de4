"""Reproducible use of libraries that draw from Python's and NumPy's global RNGs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seeds ``random`` and ``numpy.random`` for the duration of the block and
    restores their previous states afterwards.

    timm's RandAugment, RandomErasing and Mixup draw from these global states;
    seeding them from our own generators makes those draws reproducible (and
    identical for every frame of a clip) without disturbing anything else.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
