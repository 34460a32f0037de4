"""Clip and video embeddings from an encoder, for retrieval."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..models.classifier import VideoClassifier
from .device import autocast
from .views import forward_views


def clip_features(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """(clips [B, C, T, H, W] -> features [B, D], pooling name) for a model.

    A fine-tuned classifier gives its pooled features before the head (mean of the
    tokens, then ``fc_norm``); anything else with an ``encoder`` (a pretraining
    model, a probe, a bare encoder) gives the mean of the encoder's tokens after
    its final norm.
    """
    if isinstance(model, VideoClassifier):
        return model.forward_features, "mean+fc_norm" if model.fc_norm is not None else "first_token+norm"
    encoder = getattr(model, "encoder", model)
    pooling = "mean+norm" if isinstance(getattr(encoder, "norm", None), nn.LayerNorm) else "mean"
    return (lambda clips: encoder.forward_features(clips).mean(dim=1)), pooling


@dataclass
class Embeddings:
    """rows: data-list rows, in order; videos: [N, D] (L2-normalised mean of the
    normalised clip embeddings, normalised again); clips: [N, K, D] normalised
    clip embeddings; spans: per video, its clips' first and last frame in seconds
    [K, 2]; failed: (row, reason) of videos that could not be read."""

    rows: list[int] = field(default_factory=list)
    spans: list[torch.Tensor] = field(default_factory=list)
    videos: torch.Tensor | None = None
    clips: torch.Tensor | None = None
    failed: list[tuple[int, str]] = field(default_factory=list)


@torch.no_grad()
def extract_embeddings(
    model: nn.Module,
    loader: Iterable[dict],
    device: torch.device | None = None,
    precision: str = "fp32",
    clips_per_forward: int = 32,
    normalizer: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Embeddings:
    """Embeds every video ``loader`` yields (dicts with ``video`` [B, K, C, T, H, W]
    and ``row``; ``failed`` lists from :func:`~video_mae.data.loader.collate_reporting_failures`
    are passed through).

    Each clip's features are L2-normalised, averaged over the video's K clips and
    normalised again, so cosine similarity is a dot product. Works with any model
    :func:`clip_features` knows, on the CPU or a GPU. uint8 clips need a ``normalizer``
    (:class:`~video_mae.data.transforms.ClipNormalizer`).
    """
    device = device or next(model.parameters()).device
    model.eval()
    features, _ = clip_features(model)
    out = Embeddings()
    videos, clips = [], []
    # One autocast region around the whole loop: autocast keeps the weights it casts to
    # bf16 until the outermost region ends, so they are cast once, not once per batch.
    with autocast(device, precision):
        for batch in loader:
            out.failed.extend(batch.get("failed", []))
            views = batch["video"]
            if views is None:
                continue
            clip_vectors = F.normalize(forward_views(features, views, device, precision, clips_per_forward, normalizer), dim=-1)
            videos.append(F.normalize(clip_vectors.mean(dim=1), dim=-1).cpu())
            clips.append(clip_vectors.cpu())
            out.rows.extend(int(r) for r in batch["row"])
            if "spans" in batch:
                out.spans.extend(batch["spans"])
    if videos:
        out.videos, out.clips = torch.cat(videos), torch.cat(clips)
    return out
