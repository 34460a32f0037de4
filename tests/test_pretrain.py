"""End-to-end pretraining on the (tiny) demo dataset: run directory, resume, faults, sweeps."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_DEMO, tiny_overrides
from PIL import Image

import video_mae.engine.train as train_module
import video_mae.tasks.pretrain as pretrain_module
from video_mae.checkpoint import load_checkpoint
from video_mae.data.demo import DemoSpec, ensure_demo_dataset
from video_mae.engine.train import NonFiniteLossError
from video_mae.run_log import read_log
from video_mae.tasks.pretrain import run

CLI = str(Path(sys.executable).parent / "vmae-pretrain")


def records(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in read_log(run_dir / "log.jsonl") if r["kind"] == kind]


def assert_same_state(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in sa:
            assert torch.equal(sa[key], sb[key])


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, demo_cache):
    """A 2-epoch tiny run, uninterrupted."""
    from conftest import compose_config

    run_dir = tmp_path_factory.mktemp("straight")
    summary = run(compose_config("pretrain", tiny_overrides(demo_cache)), run_dir)
    return run_dir, summary


def test_run_directory_holds_everything_a_user_expects(straight_run):
    run_dir, summary = straight_run
    # Checkpoints hold tensors and plain containers only.
    raw = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert raw["epoch"] == 2 and raw["step"] == summary["step"] == 8  # 16 videos / batch 4 x 2 epochs
    assert isinstance(raw["config"], dict) and raw["config"]["model"]["encoder"]["img_size"] == 32
    config_text = (run_dir / "config.yaml").read_text()
    assert "${" not in config_text and "img_size: 32" in config_text
    start = records(run_dir, "start")[0]
    # lr = base_lr x global batch / 256, both logged; the global batch counts clips (4 videos x 4 clips each).
    assert start["global_batch"] == 16 and start["lr"] == pytest.approx(start["base_lr"] * 16 / 256)
    train = records(run_dir, "train")
    assert len(train) == 8 and all(r["loss"] > 0 and r["clips_per_s"] > 0 for r in train)
    assert [r["epoch"] for r in records(run_dir, "epoch")] == [0, 1]
    picture = Image.open(run_dir / "reconstructions" / "epoch_0002.png")
    # 3 rows (original, masked, reconstruction) of 32 px, 2 px gaps, drawn at scale 2.
    assert picture.size[1] == (3 * 32 + 2 * 2) * 2
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 8
    # Reconstruction quality against the two baselines, every epoch, and in the summary.
    recon = records(run_dir, "recon")
    assert [r["epoch"] for r in recon] == [0, 1] and recon[0]["clips"] == 8  # the 8 validation videos
    for r in recon:
        assert all(0 < r[key] < 1 for key in ("hidden_mse", "mean_colour_mse", "nearest_visible_mse"))
    assert recon[0]["mean_colour_mse"] == recon[1]["mean_colour_mse"]  # same clips and masks every epoch
    assert summary["reconstruction"]["hidden_mse"] == recon[-1]["hidden_mse"]
    assert Image.open(run_dir / "curves.png").size[0] > 300


def test_resume_after_a_stop_gives_identical_weights(straight_run, tiny_pretrain_cfg, tmp_path, monkeypatch):
    straight_dir, _ = straight_run
    cfg = tiny_pretrain_cfg()
    real_save = train_module.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(state, path):
        real_save(state, path)
        raise Stop  # as if the process died right after the first checkpoint (end of epoch 1)

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        run(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    run(cfg, tmp_path)
    assert records(tmp_path, "resume")[0]["epoch"] == 1
    assert_same_state(load_checkpoint(tmp_path / "checkpoints" / "last.pt"), load_checkpoint(straight_dir / "checkpoints" / "last.pt"))


def test_resume_mid_epoch_with_accumulation(tiny_pretrain_cfg, tmp_path, monkeypatch):
    overrides = ["train.batch_size=2", "train.accum_steps=2", "train.save_every_steps=1", "recon_every_epochs=0"]
    straight = tmp_path / "straight"
    run(tiny_pretrain_cfg(*overrides), straight)
    real_save = train_module.save_checkpoint
    calls = []

    def save_then_stop(state, path):
        real_save(state, path)
        calls.append(path)
        if len(calls) == 3:  # step 3: in the middle of the first epoch (4 steps)
            raise KeyboardInterrupt

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_pretrain_cfg(*overrides), resumed)
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    run(tiny_pretrain_cfg(*overrides), resumed)
    resume = records(resumed, "resume")[0]
    assert (resume["step"], resume["batches_done"]) == (3, 6)
    assert_same_state(load_checkpoint(resumed / "checkpoints" / "last.pt"), load_checkpoint(straight / "checkpoints" / "last.pt"))


def test_finished_run_is_not_trained_again(straight_run, tiny_pretrain_cfg):
    run_dir, _ = straight_run
    before = (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns
    summary = run(tiny_pretrain_cfg(), run_dir)
    assert summary["step"] == 8 and (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_changed_config_in_an_existing_run_is_refused(straight_run, tiny_pretrain_cfg):
    run_dir, _ = straight_run
    with pytest.raises(ValueError, match=r"different config \(model.encoder.depth\)"):
        run(tiny_pretrain_cfg("model.encoder.depth=3"), run_dir)
    with pytest.raises(FileExistsError, match="train.resume=false"):
        run(tiny_pretrain_cfg("train.resume=false"), run_dir)


def test_tubelet_4_end_to_end(tiny_pretrain_cfg, tmp_path):
    summary = run(tiny_pretrain_cfg("model.encoder.tubelet_size=4", "train.epochs=1"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["model"]["encoder.patch_embed.proj.weight"].shape[2:] == (4, 8, 8)
    assert state["model"]["decoder.head.weight"].shape[0] == 4 * 8 * 8 * 3
    assert summary["step"] == 4 and summary["last_loss"] > 0


def test_decoder_masking_end_to_end(tiny_pretrain_cfg, tmp_path, monkeypatch):
    cfg = tiny_pretrain_cfg("decoder_mask_ratio=0.5", "train.epochs=1")
    built = []
    original = pretrain_module.build_model

    def spy(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(pretrain_module, "build_model", spy)
    summary = run(cfg, tmp_path)
    assert summary["step"] == 4 and summary["last_loss"] > 0
    assert built[0].decoder_masking is not None and built[0].decoder_masking.ratio == 0.5
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["config"]["decoder_mask_ratio"] == 0.5
    # The reconstruction image is made in evaluation mode, from every hidden token.
    assert list((tmp_path / "reconstructions").glob("*.png"))


def test_reconstruction_loss_tool_scores_checkpoints_on_the_same_masks(straight_run, tmp_path):
    run_dir, _ = straight_run
    tool = Path(__file__).resolve().parents[1] / "tools" / "reconstruction_loss.py"
    checkpoint = str(run_dir / "checkpoints" / "last.pt")
    outputs = [
        subprocess.run(
            [sys.executable, str(tool), checkpoint, "--seed", "3"], env=cli_env(tmp_path), capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1]
    path, loss, count = outputs[0].strip().split("\t")
    assert path == checkpoint and 0 < float(loss) < 10 and count.startswith("(")


def test_invalid_decoder_mask_ratio_names_the_key(tiny_pretrain_cfg, tmp_path):
    with pytest.raises(ValueError, match="decoder_mask_ratio"):
        run(tiny_pretrain_cfg("decoder_mask_ratio=0.1"), tmp_path)


def test_nonfinite_losses_are_skipped_counted_and_stop_the_run(tiny_pretrain_cfg, tmp_path, monkeypatch):
    real_loss = pretrain_module.mae_loss
    calls = []

    def sometimes_nan(model, clips, labels, generator):
        calls.append(1)
        loss = real_loss(model, clips, labels, generator)
        # Step 2 of epoch 1 is NaN; from epoch 2 on every step is NaN.
        return loss * float("nan") if len(calls) == 2 or len(calls) > 4 else loss

    monkeypatch.setattr(pretrain_module, "mae_loss", sometimes_nan)
    with pytest.raises(NonFiniteLossError, match=r"3 optimizer steps in a row .*train.max_nonfinite_in_row=3"):
        run(tiny_pretrain_cfg("train.max_nonfinite_in_row=3", "train.epochs=3"), tmp_path)
    skipped = records(tmp_path, "nonfinite")
    assert [r["step"] for r in skipped] == [2, 5, 6, 7]
    # The epoch-1 checkpoint is kept, loadable, and was written before the bad steps.
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert (state["epoch"], state["counters"]["nonfinite_skipped"]) == (1, 1)
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_broken_videos_are_logged_replaced_and_counted(demo_cache, tiny_pretrain_cfg, tmp_path):
    demo = ensure_demo_dataset(DemoSpec(cache_dir=str(demo_cache), **TINY_DEMO))
    lines = demo.train_list.read_text().splitlines()
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    data_list = tmp_path / "train.txt"
    data_list.write_text(
        "\n".join([f"{demo.root / line.rsplit(' ', 1)[0]} 0" for line in lines[:7]] + [f"{tmp_path / 'broken.mp4'} 1"]) + "\n"
    )
    run_dir = tmp_path / "run"
    summary = run(tiny_pretrain_cfg(f"data.train_list={data_list}", "train.epochs=1"), run_dir)
    assert summary["bad_videos"] >= 1 and records(run_dir, "epoch")[0]["bad_videos"] == summary["bad_videos"]
    bad = (run_dir / "bad_videos.txt").read_text().splitlines()
    assert bad and all(line.startswith(f"{tmp_path / 'broken.mp4'}\tcannot open") for line in bad)


def test_a_first_row_without_a_video_stream_does_not_stop_the_previews(demo_cache, tiny_pretrain_cfg, tmp_path):
    import av
    import numpy as np

    demo = ensure_demo_dataset(DemoSpec(cache_dir=str(demo_cache), **TINY_DEMO))
    lines = demo.train_list.read_text().splitlines()
    # An mp4 holding only an audio stream: it opens, but has no video to preview.
    audio_only = tmp_path / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data_list = tmp_path / "train.txt"
    data_list.write_text("\n".join([f"{audio_only} 0"] + [f"{demo.root / line.rsplit(' ', 1)[0]} 0" for line in lines[:7]]) + "\n")
    run_dir = tmp_path / "run"
    summary = run(tiny_pretrain_cfg(f"data.train_list={data_list}", "train.epochs=1"), run_dir)
    assert (run_dir / "reconstructions" / "epoch_0001.png").is_file()
    assert summary["reconstruction"]["clips"] == 7  # the readable videos, the audio-only one skipped


def cli_env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}


def test_sigkill_then_same_command_continues_to_the_same_weights(demo_cache, tmp_path):
    overrides = tiny_overrides(demo_cache) + ["train.epochs=4", "recon_every_epochs=0"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run([CLI, *overrides, f"hydra.run.dir={straight}"], check=True, env=cli_env(tmp_path), capture_output=True)
    command = [CLI, *overrides, f"hydra.run.dir={killed}"]
    process = subprocess.Popen(command, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if log.is_file() and '"kind": "epoch"' in log.read_text():
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    subprocess.run(command, check=True, env=cli_env(tmp_path), capture_output=True)
    resume = records(killed, "resume")[0]
    assert 1 <= resume["epoch"] < 4, resume
    assert_same_state(load_checkpoint(killed / "checkpoints" / "last.pt"), load_checkpoint(straight / "checkpoints" / "last.pt"))


def test_multirun_sweep_writes_one_run_directory_per_job(demo_cache, tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [CLI, "-m", "mask.ratio=0.5,0.9", "train.epochs=1", *tiny_overrides(demo_cache), f"hydra.sweep.dir={sweep}"],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(path.parent.parent for path in sweep.glob("*/checkpoints/last.pt"))
    assert len(runs) == 2
    ratios = sorted(load_checkpoint(r / "checkpoints" / "last.pt")["config"]["mask"]["ratio"] for r in runs)
    assert ratios == [0.5, 0.9]
    assert runs[0].name != runs[1].name
    # The summary table: one row per job, the swept value against its final loss.
    from video_mae.cli import sweep as sweep_cli

    assert sweep_cli([str(sweep)]) == 0
    table = list(csv.DictReader((sweep / "summary.csv").open()))
    assert sorted(row["mask.ratio"] for row in table) == ["0.5", "0.9"]
    assert all(float(row["last_loss"]) > 0 and row["status"] == "done" for row in table)
    assert "| job | mask.ratio |" in (sweep / "summary.md").read_text()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_on_cpu(tiny_pretrain_cfg, tmp_path, precision):
    summary = run(tiny_pretrain_cfg(f"train.precision={precision}", "train.epochs=1", "recon_every_epochs=0"), tmp_path)
    assert summary["nonfinite_skipped"] == 0 and summary["last_loss"] > 0
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert (state["scaler"] is not None) == (precision == "fp16")
    assert records(tmp_path, "start")[0]["precision"] == precision


def test_tensorboard_mirrors_the_log(tiny_pretrain_cfg, tmp_path):
    run(tiny_pretrain_cfg("train.tensorboard=true", "train.epochs=1", "recon_every_epochs=0"), tmp_path)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_wandb_mirrors_the_log_offline_and_a_resume_continues_the_same_run(tiny_pretrain_cfg, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run(tiny_pretrain_cfg("train.wandb=true", "train.epochs=1", "recon_every_epochs=0"), tmp_path)
    first = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(first) == 1 and list(first[0].glob("*.wandb"))
    run(tiny_pretrain_cfg("train.wandb=true", "train.epochs=2", "recon_every_epochs=0"), tmp_path)
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # One W&B run id for the folder: the resumed run's files carry the first one's id.
    assert len(runs) == 2 and len({r.name.rsplit("-", 1)[1] for r in runs}) == 1
    # Offline, W&B keeps the run (config and history) in one protobuf file: the keys show in it.
    stored = next(runs[-1].glob("*.wandb")).read_bytes()
    assert b"train/loss" in stored and b"recon/hidden_mse" in stored and b"batch_size" in stored


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    result = subprocess.run(
        [CLI, "data=k400", f"data.train_list={tmp_path / 'missing.txt'}", f"hydra.run.dir={tmp_path / 'run'}"],
        env={k: v for k, v in cli_env(tmp_path).items() if k != "HYDRA_FULL_ERROR"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert f"vmae-pretrain: error: {tmp_path / 'missing.txt'}: data list not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_fused_adamw_skips_nonfinite_steps_without_a_sync_per_step(tiny_pretrain_cfg, tmp_path, monkeypatch):
    real_loss = pretrain_module.mae_loss
    calls = []

    def sometimes_nan(model, clips, labels, generator):
        calls.append(1)
        loss = real_loss(model, clips, labels, generator)
        return loss * float("nan") if len(calls) in (2, 3) else loss

    monkeypatch.setattr(pretrain_module, "mae_loss", sometimes_nan)
    cfg = tiny_pretrain_cfg("optim.fused=true", "train.epochs=1", "train.log_every=4", "recon_every_epochs=0")
    summary = run(cfg, tmp_path)
    assert summary["nonfinite_skipped"] == 2
    # Counted at the log point (step 4), not per step.
    assert [(r["step"], r["skipped"]) for r in records(tmp_path, "nonfinite")] == [(4, 2)]
    train = records(tmp_path, "train")
    assert len(train) == 1 and train[0]["loss"] > 0  # the mean over the 2 applied steps
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    # AdamW counted only the 2 applied steps.
    assert all(int(s["step"]) == 2 for s in state["optimizer"]["state"].values())
