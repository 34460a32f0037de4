"""vmae-bench runs end to end on tiny settings (its numbers are measurements, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import indexed_frames

from video_mae.bench.timing import interleaved_medians, matmul_peak_tflops
from video_mae.data.prep.encode import write_mp4

CLI = str(Path(sys.executable).parent / "vmae-bench")


def test_models_bench_times_every_workload(tmp_path):
    out = tmp_path / "models.json"
    result = subprocess.run(
        [CLI, "models", "--model", "vit_tiny", "--frames", "4", "--size", "32", "--batch", "2", "--precision", "fp32",
         "--device", "cpu", "--warmup", "1", "--repeats", "1", "--no-transformers", "--decoder-mask-ratio", "0.5",
         "--json", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = json.loads(out.read_text())["results"]
    names = [r["name"] for r in rows]
    assert names == ["pretrain step", "pretrain step, decoder mask 0.5", "embedding forward", "finetune step"]
    assert all(r["clips_per_s"] > 0 and r["gflop_per_clip"] > 0 for r in rows)
    # Decoder masking does less work per clip than the plain step.
    assert rows[1]["gflop_per_clip"] < rows[0]["gflop_per_clip"]
    assert "| pretrain step | ours |" in result.stdout


def test_models_bench_times_ours_and_transformers_in_turns(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "models.json"
    subprocess.run(
        [CLI, "models", "--model", "vit_tiny", "--frames", "4", "--size", "32", "--batch", "2", "--precision", "fp32",
         "--device", "cpu", "--warmup", "1", "--repeats", "2", "--json", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [(r["name"], r["implementation"]) for r in json.loads(out.read_text())["results"]]
    assert rows == [("pretrain step", "ours"), ("embedding forward", "ours"), ("finetune step", "ours"),
                    ("pretrain step", "transformers (sdpa)"), ("embedding forward", "transformers (sdpa)")]  # fmt: skip


def test_interleaved_medians_alternates_the_timed_calls():
    calls = []

    def slow():
        calls.append("slow")
        time.sleep(0.02)

    def fast():
        calls.append("fast")

    slow_s, fast_s = interleaved_medians([slow, fast], torch.device("cpu"), warmup=1, repeats=3)
    assert calls == ["slow", "fast"] + ["slow", "fast"] * 3  # warm-up once each, then in turns
    assert slow_s >= 0.02 > fast_s


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_matmul_peak_is_a_finite_rate_in_either_format(precision):
    # Both forms (a @ b and the linear layers' op) are timed or screened; bf16 runs on
    # every CPU, natively or in PyTorch's fallback kernels.
    peak = matmul_peak_tflops(torch.device("cpu"), precision, size=128, repeats=2)
    assert 0 < peak < 1e3


def test_cost_sweep_covers_every_shape_on_both_sides(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "cost"
    subprocess.run(
        [CLI, "cost", "--model", "vit_tiny", "--frames", "2,4", "--sizes", "32,48", "--precision", "fp32", "--device", "cpu",
         "--warmup", "0", "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    points = json.loads((out / "cost.json").read_text())["points"]
    shapes = sorted({(p["frames"], p["size"]) for p in points})
    assert shapes == [(2, 32), (2, 48), (4, 32), (4, 48)]
    for shape in shapes:
        here = [(p["workload"], p["implementation"]) for p in points if (p["frames"], p["size"]) == shape]
        assert sorted(here) == [("embedding forward", "ours"), ("embedding forward", "transformers (sdpa)"),
                                ("pretrain step", "ours"), ("pretrain step", "transformers (sdpa)")]  # fmt: skip
    # More tokens cost more FLOPs; memory is measured (resident memory added, on the CPU).
    ours = sorted(
        (p["tokens"], p["gflop_per_clip"]) for p in points if p["workload"] == "embedding forward" and p["implementation"] == "ours"
    )
    assert [t for t, _ in ours] == [16, 32, 36, 72] and [f for _, f in ours] == sorted(f for _, f in ours)
    assert all(p["memory_gib_per_clip"] is not None for p in points)
    assert (out / "cost.png").stat().st_size > 0 and "| 4 | 48 | 72 |" in (out / "cost.md").read_text()


def test_loader_bench_covers_each_setting(tmp_path):
    lines = []
    for i in range(6):
        write_mp4(tmp_path / f"v{i}.mp4", indexed_frames(20, height=96, width=128, seed=i))
        lines.append(f"v{i}.mp4 {i % 2}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "loader.json"
    subprocess.run(
        [CLI, "loader", "--list", str(tmp_path / "list.txt"), "--frames", "4", "--sampling-rate", "2", "--crop", "32",
         "--batch", "2", "--batches", "2", "--clips-per-video", "1,2", "--decode-short-side", "full,40", "--json", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = json.loads(out.read_text())
    assert [(r["decode_short_side"], r["clips_per_video"]) for r in rows] == [(None, 1), (None, 2), (40, 1), (40, 2)]
    assert all(r["clips"] == 2 * 2 * r["clips_per_video"] and r["clips_per_s"] > 0 for r in rows)


def test_reader_bench_compares_every_reader_that_runs_here(tmp_path):
    from video_mae.data.readers import decord_available, torchcodec_problem

    lines = []
    for i in range(3):
        write_mp4(tmp_path / f"v{i}.mp4", indexed_frames(20, seed=i))
        lines.append(f"v{i}.mp4 0")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "reader.json"
    result = subprocess.run(
        [CLI, "reader", "--list", str(tmp_path / "list.txt"), "--decodes", "20", "--frames", "4", "--sampling-rate", "2",
         "--readers", "decord,pyav,torchcodec", "--json", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = ["decord"] * decord_available() + ["pyav"] + ["torchcodec"] * (torchcodec_problem() is None)
    rows = json.loads(out.read_text())
    assert [r["backend"] for r in rows] == expected
    assert all(r["decodes"] == 20 and r["seconds"] > 0 and r["rss_max_mib"] > 0 for r in rows)
    assert all([n for n, _ in r["samples"]] == [0, 20] for r in rows)  # measured at the start and at the end
    assert "pyav: 20 clips of 4 frames" in result.stdout and "clips/s" in result.stdout


def test_loader_bench_refuses_a_short_side_below_the_crop(tmp_path):
    result = subprocess.run([CLI, "loader", "--crop", "224", "--decode-short-side", "160"], capture_output=True, text=True)
    assert result.returncode == 2 and "data.decode_short_side" in result.stderr


def test_learning_bench_writes_its_table_plot_and_runs(tmp_path, demo_cache):
    from conftest import tiny_overrides
    from PIL import Image

    overrides = [o for o in tiny_overrides(demo_cache) if not o.startswith(("train.epochs", "data.num_workers"))]
    out = tmp_path / "learning"
    args = [CLI, "learning", "--out", str(out), "--labels-per-class", "1,2", "--seeds", "0,1", "--methods", "finetune,linear",
            "--pretrain-epochs", "1", *(f"--override={o}" for o in overrides), "--override=train.epochs=1"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    # 2 budgets x 2 seeds x 2 methods x 2 initialisations, each scored on the held-out test split.
    assert len(runs) == 16 and all(0 <= r["top1"] <= 100 for r in runs)
    assert results["test_videos"] == 8 and results["pretraining"]["reconstruction"]["clips"] == 8
    # The labelled subsets are nested (a seed's larger budget holds its smaller one) and differ by seed.
    lists = {
        name: (out / "lists" / name).read_text().splitlines()
        for name in ("train_1pc_seed0.txt", "train_2pc_seed0.txt", "train_1pc_seed1.txt")
    }
    assert len(lists["train_1pc_seed0.txt"]) == 8 and len(lists["train_2pc_seed0.txt"]) == 16
    assert set(lists["train_1pc_seed0.txt"]) <= set(lists["train_2pc_seed0.txt"])
    # Probes and fine-tuning from the pretraining checkpoint; no epoch is picked on the test videos.
    run_config = (out / "runs" / "linear_pretrained_1pc_seed0" / "config.yaml").read_text()
    assert "probe: linear" in run_config and "val_every_epochs: 0" in run_config and "test.txt" in run_config
    assert not (out / "runs" / "finetune_random_1pc_seed0" / "checkpoints" / "best.pt").exists()
    table = (out / "table.md").read_text()
    assert "| linear probe, random encoder |" in table and "2 labels / class" in table and "held-out videos" in table
    assert Image.open(out / "accuracy.png").size[0] > 400
    # Run again: every run is complete, nothing is trained twice, the same table comes out.
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and (out / "table.md").read_text() == table


def test_extraction_benchmark_times_both_sides_on_the_same_frames(tiny_checkpoints, tmp_path, capsys):
    pytest.importorskip("transformers")
    from video_mae.cli import bench

    out = tmp_path / "extract.json"
    assert bench(["extract", "--checkpoint", str(tiny_checkpoints["pretrain"]), "--videos", "6", "--batch", "4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| ours |" in text and "| transformers |" in text
    report = json.loads(out.read_text())
    assert [t["implementation"] for t in report["timings"]] == ["ours", "transformers"]
    assert all(t["videos"] == 6 and t["total_s"] > 0 and t["decode_s"] > 0 and t["forward_s"] > 0 for t in report["timings"])
    assert report["cosine_gap"] < 1e-3  # the same model on the same frames: the same embeddings
    # Decoding in a worker beside the forward gives the same embeddings; two rounds, in turns.
    assert bench(["extract", "--checkpoint", str(tiny_checkpoints["pretrain"]), "--videos", "6", "--batch", "4",
                  "--workers", "1", "--rounds", "2", "--json", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["cosine_gap"] < 1e-3
    assert bench(["extract", "--checkpoint", str(tiny_checkpoints["pretrain"]), "--rounds", "0"]) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err


def test_extraction_rounds_report_the_median_of_each_measure():
    from video_mae.bench.extract import ExtractTiming, _median_round

    rounds = [ExtractTiming("ours", 8, 10.0, 2.0, 7.0), ExtractTiming("ours", 8, 30.0, 1.0, 9.0), ExtractTiming("ours", 8, 12.0, 3.0, 8.0)]
    assert _median_round(rounds) == ExtractTiming("ours", 8, 12.0, 2.0, 8.0)
