"""Run-folder curves: log parsing (garbled lines, resumed steps) and the PNG itself."""

import json

from PIL import Image

from video_mae.curves import draw_curves
from video_mae.run_log import read_log_records


def _write_log(path, records, tail=""):
    lines = [json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")


def _synthetic_run(run_dir):
    records = [{"kind": "start", "step": 0, "lr": 1e-3}]
    records += [{"kind": "train", "step": s, "epoch": s // 20, "loss": 1.0 / s, "lr": 1e-3 * s / 60} for s in range(10, 61, 10)]
    records += [{"kind": "epoch", "step": 20, "epoch": 0, "checkpoint": "last.pt"}]
    records += [{"kind": "recon", "step": 20, "epoch": 0, "hidden_mse": 0.4, "mean_colour_mse": 0.9, "nearest_visible_mse": 0.6}]
    # Killed after step 60, resumed from the step-40 checkpoint: steps 50 and 60 come again.
    records += [{"kind": "resume", "step": 40, "epoch": 2, "batches_done": 0, "path": "last.pt"}]
    records += [{"kind": "train", "step": s, "epoch": 2, "loss": 0.5 / s, "lr": 1e-4, "grad_norm": "nan"} for s in (50, 60, 70)]
    records += [{"kind": "recon", "step": 60, "epoch": 2, "hidden_mse": 0.3, "mean_colour_mse": 0.9, "nearest_visible_mse": 0.55}]
    records += [{"kind": "val", "step": 20 * e, "epoch": e, "val_top1": 10.0 + 5 * e, "val_top5": 40.0} for e in range(3)]
    run_dir.mkdir(exist_ok=True)
    _write_log(run_dir / "log.jsonl", records, tail='{"kind": "train", "step": 80, "lo')  # cut mid-write


def test_read_log_records_keeps_last_record_per_step_and_skips_garbage(tmp_path):
    _synthetic_run(tmp_path)
    records = read_log_records(tmp_path / "log.jsonl")
    train = records["train"]
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50, 60, 70]
    by_step = {r["step"]: r for r in train}
    assert by_step[50]["loss"] == 0.5 / 50 and by_step[60]["loss"] == 0.5 / 60  # the resumed run's values
    assert by_step[40]["loss"] == 1.0 / 40
    assert [r["hidden_mse"] for r in records["recon"]] == [0.4, 0.3]
    assert len(records["val"]) == 3 and set(records) == {"start", "train", "epoch", "recon", "resume", "val"}


def test_read_log_records_of_missing_file_is_empty(tmp_path):
    assert read_log_records(tmp_path / "log.jsonl") == {}


def test_draw_curves_writes_a_png(tmp_path):
    run_dir = tmp_path / "pretrain_demo"
    _synthetic_run(run_dir)
    path = draw_curves(run_dir)
    assert path == run_dir / "curves.png" and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert 600 <= width <= 3000 and 400 <= height <= 3000
    assert path.stat().st_size > 10_000  # four panels of lines and text, not a blank canvas
    assert not list(run_dir.glob("*.partial"))

    other = draw_curves(run_dir, out=tmp_path / "figures" / "run.png")
    assert other == tmp_path / "figures" / "run.png" and other.is_file()


def test_draw_curves_returns_none_without_plottable_records(tmp_path):
    (tmp_path / "log.jsonl").write_text("", encoding="utf-8")
    assert draw_curves(tmp_path) is None
    _write_log(tmp_path / "log.jsonl", [{"kind": "start", "step": 0, "lr": 1e-3}], tail="{garbled")
    assert draw_curves(tmp_path) is None
    assert not (tmp_path / "curves.png").exists()
    assert draw_curves(tmp_path / "no_such_run") is None
