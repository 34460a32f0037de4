"""Video-level predictions from clip-level views."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.dataset import BadVideoLog
from ..data.lists import VideoRecord
from ..data.loader import evaluation_loader
from ..data.settings import DataSettings
from ..data.transforms import ClipNormalizer, EvalClipTransform
from ..distributed import DistContext, broadcast_from_main, gather_to_main
from .metrics import classification_metrics, confusion_image, confusion_matrix, write_confusion_csv, write_predictions
from .settings import EvalSettings  # noqa: F401  (re-exported: older configs and checkpoints name it here)
from .views import forward_views


@dataclass
class Predictions:
    """Video-level scores keyed by data-list row; ``failed`` lists (row, reason) of
    videos that could not be read (never replaced by others)."""

    rows: list[int] = field(default_factory=list)
    probs: torch.Tensor | None = None
    failed: list[tuple[int, str]] = field(default_factory=list)


@torch.no_grad()
def predict_videos(
    model: nn.Module,
    loader: Iterable[dict],
    device: torch.device,
    precision: str,
    clips_per_forward: int = 32,
    normalizer: ClipNormalizer | None = None,
) -> Predictions:
    """Runs every view of every video and averages the softmax over a video's views.

    ``loader`` yields dicts with ``video`` [B, V, C, T, H, W], ``row`` [B] and,
    optionally, ``failed``; results are keyed by the data-list row, never by file
    name. Views go through the model ``clips_per_forward`` at a time.
    """
    model.eval()
    out = Predictions()
    probs: list[torch.Tensor] = []
    for batch in loader:
        out.failed.extend(batch.get("failed", []))
        views = batch["video"]
        if views is None:
            continue
        logits = forward_views(model, views, device, precision, clips_per_forward, normalizer)
        scores = logits.softmax(dim=-1).mean(dim=1)
        probs.append(scores.cpu())
        out.rows.extend(int(r) for r in batch["row"])
    out.probs = torch.cat(probs) if probs else None
    return out


def evaluate_videos(
    model: nn.Module,
    records: Sequence[VideoRecord],
    data: DataSettings,
    settings: EvalSettings,
    device: torch.device,
    precision: str,
    class_names: Sequence[str],
    context: DistContext = DistContext(),
    out_dir: Path | None = None,
    bad_videos: BadVideoLog | None = None,
) -> dict:
    """The multi-view protocol over ``records``: each video is decoded once for all
    its views, scores are averaged per video and merged by data-list row (across
    ranks under torchrun). The main rank computes the metrics and, with
    ``out_dir``, writes ``metrics.json``, ``predictions.csv``,
    ``confusion_matrix.csv`` and ``confusion_matrix.png``. Every rank returns the metrics.
    """
    # uint8 views from the loader, normalised on the device.
    transform = EvalClipTransform(data.crop_size, data.mean, data.std, settings.short_side, settings.num_crops, normalize=False)
    shard = list(records)[context.rank :: context.world_size]
    pin = data.pin_memory and device.type == "cuda"
    loader = evaluation_loader(shard, data, transform, settings.num_clips, settings.batch_size, pin, bad_videos)
    local = predict_videos(model, loader, device, precision, settings.clips_per_forward, ClipNormalizer(data.mean, data.std))
    gathered = gather_to_main(local, context)
    metrics = None
    if context.is_main:
        metrics = _report(gathered, records, class_names, out_dir)
    return broadcast_from_main(metrics, context)


def _report(parts: list[Predictions], records: Sequence[VideoRecord], class_names: Sequence[str], out_dir: Path | None) -> dict:
    by_row = {record.row: record for record in records}
    scores: dict[int, torch.Tensor] = {}
    failed: list[tuple[int, str]] = []
    for part in parts:
        failed.extend(part.failed)
        if part.probs is not None:
            scores.update(zip(part.rows, part.probs))
    if not scores:
        raise ValueError(f"none of the {len(records)} videos could be read; see bad_videos.txt")
    rows = sorted(scores)
    probs = torch.stack([scores[row] for row in rows])
    num_classes = probs.shape[1]
    labels = torch.tensor([by_row[row].label for row in rows])
    if int(labels.max()) >= num_classes:
        raise ValueError(f"label {int(labels.max())} in the list, but the model has {num_classes} classes")
    metrics = classification_metrics(probs, labels)
    metrics["failed_videos"] = len(failed)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        names = list(class_names) if len(class_names) == num_classes else [str(i) for i in range(num_classes)]
        write_predictions(out_dir / "predictions.csv", rows, [by_row[r].path for r in rows], labels, probs, names)
        matrix = confusion_matrix(probs.argmax(dim=1), labels, num_classes)
        write_confusion_csv(out_dir / "confusion_matrix.csv", matrix, names)
        from PIL import Image  # only for the picture; PIL is not needed to compute metrics

        Image.fromarray(confusion_image(matrix, names)).save(out_dir / "confusion_matrix.png")
        report = {**metrics, "failed": [{"row": r, "path": by_row[r].path, "reason": why} for r, why in sorted(failed)]}
        (out_dir / "metrics.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return metrics
