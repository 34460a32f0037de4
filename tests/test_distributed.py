"""Data parallelism on the CPU (gloo, 2 processes under torchrun), launchers, SLURM variables."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_overrides

from video_mae.checkpoint import load_checkpoint
from video_mae.run_log import read_log

BIN = Path(sys.executable).parent
TOLERANCE = 1e-5  # fp32; all-reduce sums in another order than one process does


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def why(result: subprocess.CompletedProcess) -> str:
    """What a failed run printed: the lines naming an error first (under torchrun the
    failing rank's own message sits far above torchrun's summary), then the end."""
    errors = [line for line in result.stderr.splitlines() if re.search(r"Error|error:|terminate|Abort|what\(\)", line)]
    return "\n".join(errors[-20:]) + "\n...\n" + result.stderr[-2000:]


def cli(name: str, overrides: list[str], ranks: int = 1, port: int = 29561, **popen) -> list[str]:
    command = [str(BIN / name), *overrides]
    if ranks > 1:
        command = [str(BIN / "torchrun"), f"--nproc-per-node={ranks}", f"--master-port={port}", *command]
    return command


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun's workers run in their own sessions, so a
    process-group kill would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, demo_cache):
    """The same 2-epoch pretraining: one process with 4 videos per step, and two ranks with 2 each."""
    root = tmp_path_factory.mktemp("ddp")
    common = tiny_overrides(demo_cache) + ["recon_every_epochs=0"]
    single = subprocess.run(cli("vmae-pretrain", [*common, "train.batch_size=4", f"hydra.run.dir={root / 'single'}"]),
                            env=env(), capture_output=True, text=True)  # fmt: skip
    assert single.returncode == 0, why(single)
    two = subprocess.run(cli("vmae-pretrain", [*common, "train.batch_size=2", f"hydra.run.dir={root / 'two'}"], ranks=2),
                         env=env(), capture_output=True, text=True)  # fmt: skip
    assert two.returncode == 0, why(two)
    return root, common


def test_two_ranks_train_the_same_weights_as_one_process(pair):
    root, _ = pair
    one = load_checkpoint(root / "single" / "checkpoints" / "last.pt")
    two = load_checkpoint(root / "two" / "checkpoints" / "last.pt")
    assert one["step"] == two["step"] == 8
    assert max_difference(one["model"], two["model"]) <= TOLERANCE
    start = [r for r in read_log(root / "two" / "log.jsonl") if r["kind"] == "start"][0]
    # The global batch counts clips: 2 ranks x 2 videos x the demo recipe's 4 clips per video.
    assert (start["ranks"], start["batch_per_rank"], start["global_batch"]) == (2, 2, 16)
    # The losses logged are the mean over the ranks, as one process computes them.
    losses_one = [r["loss"] for r in read_log(root / "single" / "log.jsonl") if r["kind"] == "train"]
    losses_two = [r["loss"] for r in read_log(root / "two" / "log.jsonl") if r["kind"] == "train"]
    assert np.allclose(losses_one, losses_two, atol=1e-5)


def test_the_checkpoint_of_two_ranks_loads_in_one_process(pair):
    from video_mae.tasks.pretrain import load_pretrained

    root, _ = pair
    model, _ = load_pretrained(root / "two" / "checkpoints" / "last.pt")
    assert not any(key.startswith("module.") for key in model.state_dict())


def test_only_the_first_rank_writes(pair):
    root, _ = pair
    one = sorted(p.relative_to(root / "single").as_posix() for p in (root / "single").rglob("*"))
    two = sorted(p.relative_to(root / "two").as_posix() for p in (root / "two").rglob("*"))
    assert one == two
    kinds = [r["kind"] for r in read_log(root / "two" / "log.jsonl")]
    assert kinds.count("start") == 1 and kinds.count("epoch") == 2
    assert (root / "two" / "pretrain.log").read_text().count("run directory:") == 1


def test_resume_after_sigkill_under_torchrun(pair):
    root, common = pair
    overrides = [*common, "train.batch_size=2", "train.epochs=8", "train.save_every_steps=1"]
    straight = subprocess.run(cli("vmae-pretrain", [*overrides, f"hydra.run.dir={root / 'straight8'}"], ranks=2, port=29562),
                              env=env(), capture_output=True, text=True)  # fmt: skip
    assert straight.returncode == 0, why(straight)
    killed = root / "killed8"
    command = cli("vmae-pretrain", [*overrides, f"hydra.run.dir={killed}"], ranks=2, port=29563)
    process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        log = killed / "log.jsonl"
        if log.is_file() and log.read_text().count('"kind": "train"') >= 3:
            break
        time.sleep(0.01)
    for pid in [*descendants(process.pid), process.pid]:  # torchrun and both ranks, at once
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    again = subprocess.run(command, env=env(), capture_output=True, text=True)
    assert again.returncode == 0, why(again)
    resume = [r for r in read_log(killed / "log.jsonl") if r["kind"] == "resume"][0]
    assert 1 <= resume["step"] < 32, resume
    a = load_checkpoint(killed / "checkpoints" / "last.pt")
    b = load_checkpoint(root / "straight8" / "checkpoints" / "last.pt")
    assert max_difference(a["model"], b["model"]) <= TOLERANCE


def test_fsdp_shards_train_the_same_weights_and_save_full_ones(pair):
    root, common = pair
    overrides = [*common, "train.batch_size=2", "train.fsdp=true", "train.save_every_steps=3"]
    result = subprocess.run(cli("vmae-pretrain", [*overrides, f"hydra.run.dir={root / 'fsdp'}"], ranks=2, port=29566),
                            env=env(), capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, why(result)
    one = load_checkpoint(root / "single" / "checkpoints" / "last.pt")
    sharded = load_checkpoint(root / "fsdp" / "checkpoints" / "last.pt")
    assert sharded["fsdp"] is True and max_difference(one["model"], sharded["model"]) <= TOLERANCE
    # Full tensors: the weights load into a plain model in one process.
    from video_mae.tasks.pretrain import load_pretrained

    model, _ = load_pretrained(root / "fsdp" / "checkpoints" / "last.pt")
    assert model.encoder.blocks[0].attn.qkv.weight.shape == one["model"]["encoder.blocks.0.attn.qkv.weight"].shape
    # Resuming a finished FSDP run on two ranks reads the full checkpoint back.
    again = subprocess.run(cli("vmae-pretrain", [*overrides, f"hydra.run.dir={root / 'fsdp'}"], ranks=2, port=29567),
                           env=env(), capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, why(again)
    assert [r["kind"] for r in read_log(root / "fsdp" / "log.jsonl")].count("resume") == 1


def test_global_batch_fixes_the_recipe_across_world_sizes(tiny_pretrain_cfg, tmp_path):
    from video_mae.engine.train import TrainSettings
    from video_mae.tasks.pretrain import run

    settings = TrainSettings(batch_size=2, global_batch=16)
    assert (settings.resolved_accum_steps(1), settings.resolved_accum_steps(2), settings.resolved_accum_steps(8)) == (8, 4, 1)
    with pytest.raises(ValueError, match=r"train.global_batch=16 is not a multiple of train.batch_size x ranks = 2 x 3"):
        settings.resolved_accum_steps(3)
    run(
        tiny_pretrain_cfg("train.batch_size=2", "train.global_batch=4", "train.epochs=1", "recon_every_epochs=0", "data.clips_per_video=1"),
        tmp_path,
    )
    start = [r for r in read_log(tmp_path / "log.jsonl") if r["kind"] == "start"][0]
    assert (start["accum_steps"], start["global_batch"], start["steps_per_epoch"]) == (2, 4, 4)


def test_extraction_shards_split_over_ranks_give_the_same_embeddings(pair, demo_cache, tmp_path):
    from video_mae.embedding_store import EmbeddingFolder

    root, _ = pair
    checkpoint = root / "single" / "checkpoints" / "last.pt"
    base = [f"checkpoint={checkpoint}", "split=train", "shard_size=3", "num_workers=0", "progress_bar=false", "dtype=float32"]
    for name, ranks in (("one", 1), ("two", 2)):
        result = subprocess.run(cli("vmae-extract", [*base, f"hydra.run.dir={tmp_path / name}"], ranks=ranks, port=29564),
                                env=env(), capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, why(result)
    one, index_one = EmbeddingFolder(tmp_path / "one").load()
    two, index_two = EmbeddingFolder(tmp_path / "two").load()
    assert [r["row"] for r in index_one] == [r["row"] for r in index_two]
    assert np.allclose(one, two, atol=1e-6)


def test_finetuning_under_torchrun(pair, demo_cache, tmp_path):
    root, _ = pair
    overrides = [o for o in tiny_overrides(demo_cache) if not o.startswith("model.decoder")]
    overrides += [
        "train.epochs=1",
        "train.batch_size=2",
        f"pretrained={root / 'single' / 'checkpoints' / 'last.pt'}",
        f"hydra.run.dir={tmp_path}",
    ]
    result = subprocess.run(cli("vmae-finetune", overrides, ranks=2, port=29565), env=env(), capture_output=True, text=True)
    assert result.returncode == 0, why(result)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_videos"] == 8
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    assert [r["kind"] for r in read_log(tmp_path / "log.jsonl")].count("val") == 1


def test_slurm_variables_become_torchrun_ones(monkeypatch):
    from video_mae.distributed import _slurm_environment

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        # setenv first, so that monkeypatch restores the variable (usually: removes it)
        # after the test; _slurm_environment writes os.environ directly.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLURM_NTASKS", "16")
    monkeypatch.setenv("SLURM_PROCID", "9")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "123456")
    monkeypatch.setenv("SLURM_LAUNCH_NODE_IPADDR", "10.0.0.7")
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    _slurm_environment()
    assert (os.environ["WORLD_SIZE"], os.environ["RANK"], os.environ["LOCAL_RANK"]) == ("16", "9", "1")
    assert os.environ["MASTER_ADDR"] == "10.0.0.7" and os.environ["MASTER_PORT"] == str(20000 + 123456 % 20000)


@pytest.mark.parametrize("launcher", ["slurm", "local"])
@pytest.mark.parametrize("app", ["pretrain", "finetune"])
def test_launcher_presets_compose(app, launcher):
    from hydra import compose, initialize_config_module

    from video_mae.cli import register_resolvers

    register_resolvers()
    with initialize_config_module(config_module="video_mae.conf", version_base="1.3"):
        cfg = compose(config_name=app, overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    launcher_cfg = cfg.hydra.launcher
    if launcher == "slurm":
        assert launcher_cfg._target_.endswith("SlurmLauncher")
        assert (launcher_cfg.tasks_per_node, launcher_cfg.gpus_per_node, launcher_cfg.max_num_timeout) == (8, 8, 20)
    else:
        assert launcher_cfg._target_.endswith("JoblibLauncher") and launcher_cfg.n_jobs == 2
