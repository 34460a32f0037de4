"""Reading checkpoints written by other code without running any of it.

Official VideoMAE ``.pth`` files pickle an ``argparse.Namespace`` (and sometimes
NumPy scalars) beside the weights. They are read with PyTorch's restricted
``weights_only`` unpickler, allowing exactly those harmless types; a file that
needs anything else is refused before it is unpickled, with the names it asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UnsafeCheckpoint(ValueError):
    """The file asks for Python objects outside the allow-list; it was not loaded."""


def _allowed() -> list:
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed it
    scalar = core.multiarray.scalar
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [argparse.Namespace, scalar, np.dtype, *dtypes]


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def load_foreign_checkpoint(path: str | Path) -> dict:
    """Loads a ``.pth`` from another codebase onto the CPU, tensors and plain data only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    allowed = _allowed()
    names = {_qualified(obj) for obj in allowed} | {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"}
    try:
        wanted = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # not a zip checkpoint (legacy format): the unpickler below still refuses
        wanted = set()
    refused = sorted(wanted - names)
    if refused:
        raise UnsafeCheckpoint(
            f"{path}: refused to load: it asks for {', '.join(refused)}, which could run code; "
            "only tensors, plain containers, argparse.Namespace and NumPy scalars are read"
        )
    with torch.serialization.safe_globals(allowed):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise UnsafeCheckpoint(f"{path}: refused to load ({str(err).splitlines()[-1][:300]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of weights, got {type(state).__name__}")
    return state
