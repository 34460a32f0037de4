"""video_mae: self-supervised video pretraining with masked autoencoders.

    import video_mae
    model = video_mae.load("runs/pretrain/default/checkpoints/last.pt")
    vectors = model.embed(["a.mp4", "b.mp4"])

``load`` and ``VideoModel`` live in :mod:`video_mae.api`; they are imported on first use,
so that ``import video_mae`` (and every command's config check) stays free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["VideoModel", "__version__", "load"]

if TYPE_CHECKING:
    from .api import VideoModel, load


def __getattr__(name: str) -> Any:
    if name in ("load", "VideoModel"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'video_mae' has no attribute {name!r}")
