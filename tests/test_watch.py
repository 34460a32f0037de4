"""What a user watching a run sees: a kept line per epoch, a closing summary, labelled pictures."""

from __future__ import annotations

import numpy as np
import torch

from video_mae.cli import closing_lines
from video_mae.engine.metrics import confusion_image
from video_mae.tasks.pretrain import run


def test_one_kept_line_per_epoch_with_loss_speed_and_eta(tiny_pretrain_cfg, tmp_path, caplog):
    with caplog.at_level("INFO", logger="video_mae.engine.train"):
        run(tiny_pretrain_cfg("train.epochs=2", "recon_every_epochs=0"), tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "video_mae.engine.train"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("train loss" in line and "clips/s" in line and "ETA" in line for line in lines)
    assert lines[-1].endswith("ETA 0:00")


def test_the_closing_lines_name_the_numbers_and_the_files(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"x")
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    (tmp_path / "curves.png").write_bytes(b"x")
    text = closing_lines("vmae-finetune", {"best_val_top1": 71.25, "test": {"top1": 70.0}, "run_dir": str(tmp_path)}, 125.4)
    first, *paths = text.splitlines()
    assert first == "vmae-finetune: done in 2:05; best val top-1 71.25, test top-1 70"
    assert paths == [f"  checkpoint: {tmp_path / 'checkpoints' / 'best.pt'}", f"  curves: {tmp_path / 'curves.png'}"]


def test_the_confusion_matrix_names_both_axes():
    names = [f"class_{i}" for i in range(4)]
    matrix = torch.eye(4, dtype=torch.long) * 5
    image = confusion_image(matrix, names)
    dark = (image < 128).all(axis=2)
    rows, cols = np.nonzero(dark)
    cell_block_bottom = 14 + 4 * 40
    assert rows.max() > cell_block_bottom + 20  # the turned predicted-class names and the axis title below the cells
    assert cols.min() < 14  # the turned row-axis title left of the names
