"""vmae-bench runs end to end on tiny settings (its numbers are measurements, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import indexed_frames
from video_mae.data.encode import write_mp4

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


def test_loader_bench_refuses_a_short_side_below_the_crop(tmp_path):
    result = subprocess.run(
        [CLI, "loader", "--crop", "224", "--decode-short-side", "160"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "data.decode_short_side" in result.stderr
