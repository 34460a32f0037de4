"""Classification metrics and the files that report them."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """top-1, top-5 (top-k for fewer than 5 classes) and mean per-class accuracy, in %.

    probs: [N, K] video-level scores; labels: [N]. Mean-class accuracy averages the
    top-1 recall of the classes that occur in ``labels``.
    """
    if probs.shape[0] == 0:
        raise ValueError("no predictions to score")
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1).indices
    correct1 = top[:, 0] == labels
    correctk = (top == labels[:, None]).any(dim=1)
    per_class = [correct1[labels == c].float().mean().item() for c in labels.unique().tolist()]
    return {
        "top1": 100.0 * correct1.float().mean().item(),
        f"top{k}": 100.0 * correctk.float().mean().item(),
        "mean_class_accuracy": 100.0 * float(np.mean(per_class)),
        "num_videos": int(probs.shape[0]),
    }


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[K, K] counts; row = true class, column = predicted class."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def write_predictions(
    path: str | Path,
    rows: Sequence[int],
    paths: Sequence[str],
    labels: torch.Tensor,
    probs: torch.Tensor,
    class_names: Sequence[str],
) -> None:
    """One line per video, keyed by its row in the data list."""
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "path", "label", "label_name", "prediction", "prediction_name", "confidence", f"top{k}"])
        for i, row in enumerate(rows):
            label, predicted = int(labels[i]), int(top.indices[i, 0])
            writer.writerow(
                [
                    row,
                    paths[i],
                    label,
                    class_names[label],
                    predicted,
                    class_names[predicted],
                    f"{float(top.values[i, 0]):.6f}",
                    " ".join(str(int(c)) for c in top.indices[i]),
                ]
            )


def write_confusion_csv(path: str | Path, matrix: torch.Tensor, class_names: Sequence[str]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *class_names])
        for name, counts in zip(class_names, matrix.tolist()):
            writer.writerow([name, *counts])


def confusion_image(matrix: torch.Tensor, class_names: Sequence[str]) -> np.ndarray:
    """uint8 RGB picture of a row-normalised confusion matrix (white = 0, dark blue =
    the whole row): rows are the true classes, named along the left edge, columns the
    predicted ones, named (turned) along the bottom, for up to 60 classes; axis titles."""
    from PIL import Image, ImageDraw  # only for the picture; PIL is not needed to compute metrics

    k = matrix.shape[0]
    cell = int(np.clip(600 // max(k, 1), 3, 40))
    rates = (matrix.float() / matrix.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
    label_width = 0 if k > 60 else min(160, 7 * max(len(n) for n in class_names) + 8)
    title = 14  # one line of PIL's default font
    left, top = title + label_width, title
    width, height = left + k * cell + 1, top + k * cell + 1 + label_width + title
    image = Image.new("RGB", (max(width, 140), height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 1), "rows: true class", fill="black")
    draw.text((left, height - title + 1), "columns: predicted class", fill="black")
    side = Image.new("RGB", (k * cell + 1, title), "white")  # the row axis title, turned
    ImageDraw.Draw(side).text((2, 1), "true", fill="black")
    image.paste(side.rotate(90, expand=True), (0, top))
    for i in range(k):
        if label_width:
            name = class_names[i][: (label_width - 8) // 7]
            draw.text((title + 2, top + i * cell + max(0, (cell - 10) // 2)), name, fill="black")
            turned = Image.new("RGB", (label_width, max(cell, 1)), "white")
            ImageDraw.Draw(turned).text((2, max(0, (cell - 10) // 2)), name, fill="black")
            image.paste(turned.rotate(90, expand=True), (left + i * cell, top + k * cell + 1))
        for j in range(k):
            shade = rates[i, j]
            colour = (int(255 - 225 * shade), int(255 - 180 * shade), int(255 - 60 * shade))
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=colour, outline=(220, 220, 220) if cell >= 8 else None)
            if cell >= 28 and matrix[i, j] > 0:
                draw.text((x + 3, y + cell // 3), str(int(matrix[i, j])), fill="black" if shade < 0.6 else "white")
    return np.asarray(image)
