"""The evaluation protocol: per-row merging of views, metrics, reports."""

import csv

import numpy as np
import pytest
import torch
from conftest import indexed_frames

from video_mae.data.lists import VideoRecord
from video_mae.data.prep.encode import write_mp4
from video_mae.data.settings import DataSettings
from video_mae.engine.evaluate import EvalSettings, evaluate_videos
from video_mae.engine.metrics import classification_metrics, confusion_matrix
from video_mae.models import VisionTransformer3D
from video_mae.models.classifier import VideoClassifier


def test_metrics_on_known_scores():
    probs = torch.tensor(
        [
            [0.6, 0.3, 0.1],  # label 0: top-1 right
            [0.5, 0.4, 0.1],  # label 1: top-1 wrong, top-3 right
            [0.1, 0.2, 0.7],  # label 2: right
            [0.2, 0.5, 0.3],  # label 2: wrong
        ]
    )
    labels = torch.tensor([0, 1, 2, 2])
    metrics = classification_metrics(probs, labels)
    assert metrics["top1"] == 50.0 and metrics["top3"] == 100.0 and metrics["num_videos"] == 4
    # Per class: 1/1, 0/1, 1/2 -> mean 50%.
    assert metrics["mean_class_accuracy"] == pytest.approx(50.0)
    matrix = confusion_matrix(probs.argmax(1), labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]


@pytest.fixture(scope="module")
def same_name_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("same_names")
    for folder, seed in (("a", 1), ("b", 2)):
        (root / folder).mkdir()
        write_mp4(root / folder / "clip.mp4", indexed_frames(24, height=32, width=48, seed=seed))
    return root


def tiny_classifier():
    torch.manual_seed(0)
    encoder = VisionTransformer3D(
        img_size=32, patch_size=8, num_frames=4, tubelet_size=2, embed_dim=16, depth=1, num_heads=2, final_norm=False
    )
    model = VideoClassifier(encoder, num_classes=3, head_init_scale=1.0)
    return model.eval()


def test_views_are_merged_by_row_never_by_file_name(same_name_videos, tmp_path):
    a, b = str(same_name_videos / "a" / "clip.mp4"), str(same_name_videos / "b" / "clip.mp4")
    records = [VideoRecord(0, a, 0), VideoRecord(1, b, 1), VideoRecord(2, a, 2)]
    data = DataSettings(name="t", train_list="unused", num_frames=4, sampling_rate=2, crop_size=32, num_workers=0)
    settings = EvalSettings(num_clips=2, num_crops=3, batch_size=2)
    model = tiny_classifier()
    evaluate_videos(model, records, data, settings, torch.device("cpu"), "fp32", ["x", "y", "z"], out_dir=tmp_path)
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [(int(r["row"]), r["path"], int(r["label"])) for r in rows] == [(0, a, 0), (1, b, 1), (2, a, 2)]
    # Same file -> same scores; the other file of the same name -> its own scores.
    assert rows[0]["confidence"] == rows[2]["confidence"] and rows[0]["top3"] == rows[2]["top3"]
    assert rows[0]["confidence"] != rows[1]["confidence"]


def test_video_score_is_the_mean_softmax_over_its_views(same_name_videos, tmp_path):
    from video_mae.data.readers import read_frames
    from video_mae.data.sampling import ClipSampler
    from video_mae.data.transforms import EvalClipTransform

    path = str(same_name_videos / "a" / "clip.mp4")
    data = DataSettings(name="t", train_list="unused", num_frames=4, sampling_rate=2, crop_size=32, num_workers=0)
    model = tiny_classifier()
    evaluate_videos(
        model,
        [VideoRecord(0, path, 0)],
        data,
        EvalSettings(num_clips=2, num_crops=3),
        torch.device("cpu"),
        "fp32",
        ["x", "y", "z"],
        out_dir=tmp_path,
    )
    transform = EvalClipTransform(32, data.mean, data.std, num_crops=3)
    views = []
    for clip in ClipSampler(4, 2).uniform_clips(24, 2):
        views.append(transform(read_frames(path, clip.tolist())))
    with torch.no_grad():
        expected = model(torch.cat(views)).softmax(-1).mean(0)
    row = next(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert float(row["confidence"]) == pytest.approx(float(expected.max()), abs=1e-5)
    assert int(row["prediction"]) == int(np.argmax(expected.numpy()))
