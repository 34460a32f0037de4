"""Fine-tuning, probes and the evaluation protocol, end to end on the tiny demo."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose_config, tiny_finetune_overrides, tiny_overrides
from PIL import Image

import video_mae.engine.train as train_module
from video_mae.checkpoint import load_checkpoint
from video_mae.run_log import read_log
from video_mae.tasks import evaluate as evaluate_task
from video_mae.tasks import finetune as finetune_task
from video_mae.tasks import pretrain as pretrain_task

BIN = Path(sys.executable).parent


def records(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in read_log(run_dir / "log.jsonl") if r["kind"] == kind]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, demo_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrained")
    pretrain_task.run(compose_config("pretrain", tiny_overrides(demo_cache) + ["train.epochs=1", "recon_every_epochs=0"]), run_dir)
    return run_dir / "checkpoints" / "last.pt"


@pytest.fixture
def finetune_cfg(demo_cache):
    def make(*extra: str):
        return compose_config("finetune", tiny_finetune_overrides(demo_cache) + ["train.epochs=2"] + list(extra))

    return make


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, demo_cache, pretrained) -> Path:
    run_dir = tmp_path_factory.mktemp("finetuned")
    cfg = compose_config("finetune", tiny_finetune_overrides(demo_cache) + ["train.epochs=2", f"pretrained={pretrained}"])
    finetune_task.run(cfg, run_dir)
    return run_dir


def test_finetune_from_pretrained_writes_the_reports(finetuned, pretrained):
    run_dir = finetuned
    loaded = records(run_dir, "pretrained")[0]
    # Only the head (and fc_norm, which follows the pooling) is new.
    assert loaded["missing"] == ["fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"]
    assert loaded["loaded"] == 28 and loaded["adapted"] == []
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["extras"]["classifier"]["num_classes"] == 8
    # best.pt is for evaluation: weights without the optimizer state that last.pt keeps for resuming.
    assert "optimizer" not in best and "rng" not in best and "optimizer" in load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert best["extras"]["best"]["epoch"] in (1, 2)
    assert len(records(run_dir, "val")) == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_videos"] == 8 and 0 <= metrics["top1"] <= 100 and "top5" in metrics
    assert metrics["failed_videos"] == 0
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    assert [int(r["row"]) for r in rows] == list(range(8))
    assert {"row", "path", "label", "prediction", "top5", "confidence"} <= rows[0].keys()
    assert len(rows[0]["top5"].split()) == 5
    matrix = list(csv.reader((run_dir / "confusion_matrix.csv").open()))
    assert len(matrix) == 9 and sum(int(x) for row in matrix[1:] for x in row[1:]) == 8
    assert Image.open(run_dir / "confusion_matrix.png").size[0] > 100


def test_vmae_eval_reproduces_the_final_test(finetuned, tmp_path):
    cfg = compose_config("evaluate", [f"checkpoint={finetuned / 'checkpoints' / 'best.pt'}"])
    summary = evaluate_task.run(cfg, tmp_path)
    finetune_metrics = json.loads((finetuned / "metrics.json").read_text())
    assert summary["top1"] == finetune_metrics["top1"] and summary["views"] == [2, 1]  # the demo recipe: 2 clips x 1 crop
    assert (tmp_path / "predictions.csv").read_text() == (finetuned / "predictions.csv").read_text()
    # Fewer views: a different protocol, still one prediction per video.
    single = evaluate_task.run(
        compose_config("evaluate", [f"checkpoint={finetuned / 'checkpoints' / 'best.pt'}", "eval.num_clips=1", "eval.num_crops=1"]),
        tmp_path / "single",
    )
    assert single["views"] == [1, 1] and single["num_videos"] == 8


def test_eval_under_torchrun_matches_one_process(finetuned, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "two"
    result = subprocess.run(
        [str(BIN / "torchrun"), "--nproc-per-node=2", "--master-port=29533", str(BIN / "vmae-eval"),
         f"checkpoint={finetuned / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={out}"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "predictions.csv").read_text() == (finetuned / "predictions.csv").read_text()
    assert result.stdout.count('"top1"') == 1  # only the main process reports


def test_from_scratch_and_a_different_clip_shape(finetune_cfg, pretrained, tmp_path):
    scratch = finetune_task.run(finetune_cfg("train.epochs=1", "val_every_epochs=0"), tmp_path / "scratch")
    assert not records(tmp_path / "scratch", "pretrained") and scratch["test"]["num_videos"] == 8
    # Pretrained on 8 frames at 32 px (grid 4x4x4); fine-tuned on 4 frames at 48 px (grid 2x6x6).
    finetune_task.run(
        finetune_cfg("train.epochs=1", "data.num_frames=4", "data.crop_size=48", f"pretrained={pretrained}"), tmp_path / "shape"
    )
    assert records(tmp_path / "shape", "pretrained")[0]["pos_embed_grid"] == [4, 4, 4]
    state = load_checkpoint(tmp_path / "shape" / "checkpoints" / "last.pt")
    assert state["extras"]["classifier"]["pos_embed_grid"] == [4, 4, 4]


@pytest.mark.parametrize("probe", ["linear", "attentive"])
def test_probes_keep_the_encoder_frozen(finetune_cfg, pretrained, tmp_path, probe):
    finetune_task.run(finetune_cfg("train.epochs=1", f"probe={probe}", "probe_heads=2", f"pretrained={pretrained}"), tmp_path)
    before = load_checkpoint(pretrained)["model"]
    after = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    encoder_keys = [k for k in after if k.startswith("encoder.")]
    assert encoder_keys and all(torch.equal(after[k], before[k]) for k in encoder_keys)
    assert records(tmp_path, "start")[0]["trainable_parameters"] < sum(v.numel() for k, v in after.items() if k.startswith("encoder."))
    assert json.loads((tmp_path / "metrics.json").read_text())["num_videos"] == 8


def test_finetune_resume_with_mixup_and_augmentation_is_exact(finetune_cfg, pretrained, tmp_path, monkeypatch):
    overrides = [f"pretrained={pretrained}", "ema=0.9", "val_every_epochs=0"]
    finetune_task.run(finetune_cfg(*overrides), tmp_path / "straight")
    real_save = train_module.save_checkpoint

    def save_then_stop(state, path):
        real_save(state, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        finetune_task.run(finetune_cfg(*overrides), tmp_path / "resumed")
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    finetune_task.run(finetune_cfg(*overrides), tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["extras"]["ema"]:
        assert torch.equal(a["extras"]["ema"][key], b["extras"]["ema"][key]), key


def test_unreadable_videos_are_counted_not_swapped(finetuned, tmp_path):
    rows = list(csv.DictReader((finetuned / "predictions.csv").open()))
    data_list = tmp_path / "list.txt"
    (tmp_path / "broken.mp4").write_bytes(b"garbage")
    lines = [f"{rows[0]['path']} {rows[0]['label']}", f"{tmp_path / 'broken.mp4'} 3", f"{rows[1]['path']} {rows[1]['label']}"]
    data_list.write_text("\n".join(lines) + "\n")
    summary = evaluate_task.run(
        compose_config("evaluate", [f"checkpoint={finetuned / 'checkpoints' / 'best.pt'}", f"list={data_list}"]), tmp_path / "ev"
    )
    assert summary["num_videos"] == 2 and summary["failed_videos"] == 1
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["failed"] == [{"row": 1, "path": str(tmp_path / "broken.mp4"), "reason": report["failed"][0]["reason"]}]
    assert [int(r["row"]) for r in csv.DictReader((tmp_path / "ev" / "predictions.csv").open())] == [0, 2]
    assert "broken.mp4\tcannot open" in (tmp_path / "ev" / "bad_videos.txt").read_text()


def test_eval_refuses_a_pretraining_checkpoint(pretrained, tmp_path):
    with pytest.raises(ValueError, match="not a vmae-finetune checkpoint"):
        evaluate_task.run(compose_config("evaluate", [f"checkpoint={pretrained}"]), tmp_path)
