"""Bad input and faults end in one clear line (exit code 2, the file/key/line named, no
traceback) and lose nothing: config typos, broken Hugging Face folders, checkpoints of the
wrong kind, a full disk, a second writer in a run folder, leftovers of a kill, bad lists."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose_config, console_command, tiny_overrides

from video_mae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from video_mae.cli import convert as convert_cli
from video_mae.cli import retrieve as retrieve_cli
from video_mae.cli import visualize as visualize_cli
from video_mae.data.lists import DataListError, read_data_list
from video_mae.models.key_check import StateMismatch
from video_mae.tasks import evaluate as evaluate_task
from video_mae.tasks import extract as extract_task
from video_mae.tasks import pretrain as pretrain_task
from video_mae.tasks.run_dir import open_run_dir, write_summary


def command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return console_command(*args, cwd=cwd, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    error = next(line for line in result.stderr.splitlines() if ": error: " in line)
    for needle in needles:
        assert needle in error, (needle, error)
    return error


# --- config errors: answered before the heavy imports, with the key meant ----------------


def test_a_typo_in_a_key_names_the_key_meant(tmp_path):
    result = command("vmae-pretrain", "train.epoch=3", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "train.epoch", "did you mean train.epochs?")
    assert not (tmp_path / "run").exists()  # nothing was written for a refused command


def test_an_unknown_preset_lists_the_known_ones(tmp_path):
    result = command("vmae-finetune", "model=vit_x", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "model/vit_x", "vit_b")


def test_an_unparseable_override_says_how_to_quote(tmp_path):
    result = command("vmae-eval", "checkpoint=runs/a=b/last.pt", cwd=tmp_path)
    assert_one_line_error(result, "mismatched input", "quoted")


def test_an_ill_typed_value_names_the_key(tmp_path):
    result = command("vmae-pretrain", "optim.base_lr=abc", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, "optim.base_lr must be float, got 'abc'")


# --- checkpoints --------------------------------------------------------------------------


def test_an_empty_checkpoint_file_says_so(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    result = command("vmae-eval", f"checkpoint={tmp_path / 'empty.pt'}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path)
    assert_one_line_error(result, f"{tmp_path / 'empty.pt'}", "empty file")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickled_object_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        torch.save({"model": {}, "payload": _RunsCode()}, handle)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "could run code" in message
    assert "weights_only" not in message  # no advice to load it unguarded


def test_a_fine_tuned_checkpoint_given_to_visualize(tiny_checkpoints, demo_cache, tmp_path, capsys):
    video = next(Path(demo_cache).glob("demo_v2_*/train/*/*.mp4"))
    code = visualize_cli([str(tiny_checkpoints["finetune"]), str(video), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "fine-tuned classifier" in err and "vmae-pretrain checkpoint" in err
    assert "Traceback" not in err


def config_disagreeing_with_weights(source: Path, target: Path) -> Path:
    state = load_checkpoint(source)
    state["config"]["model"]["encoder"]["depth"] += 1  # the weights hold one block fewer
    save_checkpoint({k: v for k, v in state.items() if k != "format_version"}, target)
    return target


def test_a_config_that_disagrees_with_its_weights_is_one_message(tiny_checkpoints, demo_cache, tmp_path, capsys):
    bad_pre = config_disagreeing_with_weights(tiny_checkpoints["pretrain"], tmp_path / "bad_pre.pt")
    bad_ft = config_disagreeing_with_weights(tiny_checkpoints["finetune"], tmp_path / "bad_ft.pt")
    video = next(Path(demo_cache).glob("demo_v2_*/train/*/*.mp4"))
    assert visualize_cli([str(bad_pre), str(video), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{bad_pre}: the weights do not fit" in err and "missing keys: encoder.blocks.2" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(StateMismatch, match=rf"{bad_pre}: the weights do not fit.*missing keys"):
        extract_task.run(compose_config("extract", [f"checkpoint={bad_pre}", "num_workers=0", "progress_bar=false"]), tmp_path / "e")
    with pytest.raises(StateMismatch, match=rf"{bad_ft}: the weights do not fit.*missing keys"):
        evaluate_task.run(compose_config("evaluate", [f"checkpoint={bad_ft}", "num_workers=0"]), tmp_path / "ev")


def test_retrieval_with_a_model_of_another_width(tiny_checkpoints, demo_cache, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    extract_task.run(
        compose_config("extract", [f"checkpoint={tiny_checkpoints['pretrain']}", "num_workers=0", "progress_bar=false"]), gallery
    )
    # The same architecture, 48 wide instead of 32: a checkpoint as vmae-pretrain writes one.
    from video_mae.models.from_checkpoint import model_from_checkpoint

    state = load_checkpoint(tiny_checkpoints["pretrain"])
    for key, value in (("embed_dim", 48), ("num_heads", 2)):
        state["config"]["model"]["encoder"][key] = value
    state["model"] = model_from_checkpoint(state).state_dict()
    wider = tmp_path / "wider.pt"
    save_checkpoint({k: v for k, v in state.items() if k != "format_version"}, wider)
    video = next(Path(demo_cache).glob("demo_v2_*/val/*/*.mp4"))
    code = retrieve_cli([str(gallery), "--videos", str(video), "--checkpoint", str(wider), "--backend", "exact"])
    err = capsys.readouterr().err
    assert code == 2 and "48 dimensions" in err and "32" in err and "Traceback" not in err


@contextlib.contextmanager
def small_tmpfs(folder: Path, options: str):
    """A tmpfs mounted at ``folder`` (a real full disk); the test is skipped where root
    or the kernel does not allow mounting."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_during_a_save_names_the_space_needed(tmp_path):
    with small_tmpfs(tmp_path / "small", "size=2m") as mount:
        save_checkpoint({"model": {"w": torch.zeros(1000)}, "step": 1}, mount / "last.pt")
        with pytest.raises(CheckpointError) as caught:
            save_checkpoint({"model": {"w": torch.zeros(2_000_000)}, "step": 2}, mount / "last.pt")  # 8 MB
        message = str(caught.value)
        assert "needs about 8 MiB free" in message and "the previous checkpoint is intact" in message
        assert "enforce fail" not in message
        assert load_checkpoint(mount / "last.pt")["step"] == 1
        assert [p.name for p in mount.iterdir()] == ["last.pt"]  # no partial file left behind


def test_a_full_disk_before_the_start_is_one_line(tmp_path):
    with small_tmpfs(tmp_path / "full", "size=4k,nr_inodes=4") as mount:
        (mount / "filler").write_bytes(b"x" * 4096)  # fill it
        result = command("vmae-pretrain", f"hydra.run.dir={mount / 'run'}", cwd=tmp_path)
        assert_one_line_error(result, "No space left on device")


# --- Hugging Face folders -------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf") / "good"
    config = transformers.VideoMAEConfig(
        hidden_size=32, num_attention_heads=2, intermediate_size=64, num_hidden_layers=1, image_size=32,
        patch_size=8, num_frames=4, tubelet_size=2,
    )  # fmt: skip
    transformers.VideoMAEModel(config).save_pretrained(folder)
    return folder


def broken_copy(good: Path, target: Path, edit_config=None, config_text: str | None = None) -> Path:
    shutil.copytree(good, target)
    if config_text is not None:
        (target / "config.json").write_text(config_text)
    elif edit_config is not None:
        config = json.loads((good / "config.json").read_text())
        edit_config(config)
        (target / "config.json").write_text(json.dumps(config, indent=1))
    return target


def import_error(folder: Path, tmp_path: Path, capsys) -> str:
    code = convert_cli(["import", str(folder), "--out", str(tmp_path / "out.pt")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.pt").exists()
    return err


def test_a_good_folder_imports(hf_folder, tmp_path, capsys):
    assert convert_cli(["import", str(hf_folder), "--out", str(tmp_path / "ok.pt")]) == 0


@pytest.mark.parametrize(
    "name, edit, text, needles",
    [
        ("invalid_json", None, '{"hidden_size": 32,,}', ["config.json", "line 1", "not valid JSON"]),
        ("a_list", None, "[1, 2]", ["config.json", "JSON object, got a JSON list"]),
        ("string_width", lambda c: c.update(hidden_size="abc"), None, ["config.json", "hidden_size must be an integer", '"abc"']),
        ("null_width", lambda c: c.update(hidden_size=None), None, ["config.json", "hidden_size must be an integer", "null"]),
        ("heads", lambda c: c.update(num_attention_heads=3), None, ["config.json", "num_attention_heads=3 does not divide hidden_size=32"]),
        (
            "width_vs_weights",
            lambda c: c.update(hidden_size=64, num_attention_heads=2),
            None,
            ["config.json", "do not fit", "shape mismatches"],
        ),
    ],
)
def test_a_broken_config_json_names_the_file_and_key(hf_folder, tmp_path, capsys, name, edit, text, needles):
    err = import_error(broken_copy(hf_folder, tmp_path / name, edit, text), tmp_path, capsys)
    for needle in needles:
        assert needle in err, (needle, err)


def test_truncated_safetensors_and_a_pickled_bin_name_the_file(hf_folder, tmp_path, capsys):
    truncated = broken_copy(hf_folder, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    err = import_error(truncated, tmp_path, capsys)
    assert f"{weights}: not a readable safetensors file" in err
    pickled = broken_copy(hf_folder, tmp_path / "pickled")
    (pickled / "model.safetensors").unlink()
    with (pickled / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"weights": _RunsCode()}, handle)
    err = import_error(pickled, tmp_path, capsys)
    assert "pytorch_model.bin" in err and "could run code" in err and "UnpicklingError" not in err


# --- run folders: one writer, no leftovers, no record lost ------------------------------------


def test_a_second_command_in_a_locked_run_folder_names_the_holder(tmp_path, demo_cache):
    from video_mae.tasks.run_lock import lock_run_folder, release_run_folder

    run_dir = tmp_path / "run"
    lock_run_folder(run_dir)  # this process plays the first command
    try:
        result = command("vmae-pretrain", *tiny_overrides(demo_cache), "train.epochs=1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert_one_line_error(result, f"{run_dir.resolve()} is in use by another run", f"PID {os.getpid()}")
        assert not (run_dir / "checkpoints").exists() and not (run_dir / "log.jsonl").exists()
    finally:
        release_run_folder(run_dir)


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from video_mae.tasks.run_lock import lock_run_folder; lock_run_folder({str(run_dir)!r}); print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    from video_mae.tasks.run_lock import lock_run_folder, release_run_folder

    with caplog.at_level("WARNING"):
        lock_run_folder(run_dir)
    release_run_folder(run_dir)
    assert f"taking over the lock left by PID {holder.pid}" in caplog.text


def test_partial_checkpoints_of_a_kill_are_removed_when_the_folder_is_opened(tiny_pretrain_cfg, tmp_path):
    from video_mae.tasks.run_lock import release_run_folder

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / ".last.pt.abc123.tmp").write_bytes(b"partial")
    (checkpoints / "keep.txt").write_text("not ours to remove")
    open_run_dir(tiny_pretrain_cfg(), tmp_path, True, ())
    release_run_folder(tmp_path)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["keep.txt"]


def test_reopening_a_finished_run_keeps_its_summary(tiny_pretrain_cfg, tmp_path):
    cfg = tiny_pretrain_cfg("train.epochs=1", "recon_every_epochs=0")
    first = pretrain_task.run(cfg, tmp_path)
    assert first["first_loss"] is not None
    again = pretrain_task.run(cfg, tmp_path)  # complete: nothing to train
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["first_loss"] == first["first_loss"] and saved["last_loss"] == first["last_loss"]
    assert again["first_loss"] == first["first_loss"]


def test_a_summary_is_never_overwritten_with_less(tmp_path):
    write_summary(tmp_path, {"top1": 50.0, "first_loss": 2.0})
    write_summary(tmp_path, {"top1": None, "first_loss": 1.5, "extra": 1})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"top1": 50.0, "first_loss": 1.5, "extra": 1}


def test_checkpoints_and_exports_respect_the_umask(tiny_checkpoints, tmp_path):
    pytest.importorskip("safetensors")
    from video_mae.convert import export_huggingface

    previous = os.umask(0o022)
    try:
        save_checkpoint({"model": {}}, tmp_path / "c.pt")
        export_huggingface(tiny_checkpoints["pretrain"], tmp_path / "hf")
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "hf" / "model.safetensors").stat().st_mode & 0o777 == 0o644


# --- data lists -------------------------------------------------------------------------------


def test_one_video_with_two_labels_names_both_lines(tmp_path):
    data_list = tmp_path / "list.txt"
    data_list.write_text("a.mp4 1\nb.mp4 2\na.mp4 3\n")
    with pytest.raises(DataListError, match=rf"{data_list}:3: .*a.mp4 has label 3 here and label 1 at line 1"):
        read_data_list(data_list)
    data_list.write_text("a.mp4 1\na.mp4 1\n")  # an exact repeat is only warned about (by the list checks)
    assert len(read_data_list(data_list)) == 2


def test_a_directory_and_a_foreign_csv_header(tmp_path):
    with pytest.raises(DataListError, match="is a directory"):
        read_data_list(tmp_path)
    data_list = tmp_path / "list.csv"
    data_list.write_text("video,class\na.mp4,1\n")
    with pytest.raises(DataListError, match=rf"{data_list}:1: a CSV header needs the columns path and label.*found video, class"):
        read_data_list(data_list)


def test_eval_and_extract_take_the_decode_timeout(tmp_path):
    for name in ("evaluate", "extract"):
        assert compose_config(name, ["checkpoint=x.pt", "decode_timeout_s=5"]).decode_timeout_s == 5


def test_an_exported_classifier_runs_in_the_transformers_pipeline(tiny_checkpoints, demo_cache, tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("av")
    from video_mae.convert import export_huggingface

    folder = export_huggingface(tiny_checkpoints["finetune"], tmp_path / "hf")
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {p.name for p in folder.iterdir()}
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    assert processor.crop_size == {"height": 32, "width": 32}
    video = next(Path(demo_cache).glob("demo_v2_*/val/*/*.mp4"))
    classify = transformers.pipeline("video-classification", model=str(folder))
    # transformers 5 decodes a path with torchcodec (FFmpeg's shared libraries); decoded
    # frames work everywhere.
    from video_mae.data.readers import read_frames

    frames = read_frames(str(video), list(range(0, 16, 2)), "pyav")  # [T, H, W, 3] uint8
    results = classify(frames, top_k=3)
    names = (next(Path(demo_cache).glob("demo_v2_*/classes.txt"))).read_text().split()
    assert len(results) == 3 and all(r["label"] in names for r in results)
    from video_mae.data.readers import torchcodec_problem

    if torchcodec_problem() is None:  # with FFmpeg's libraries, the pipeline also takes the path
        from_path = classify(str(video), top_k=3)
        assert len(from_path) == 3 and all(r["label"] in names for r in from_path)
    assert 0 < sum(r["score"] for r in results) <= 1 + 1e-6
    card = (folder / "README.md").read_text()
    assert "video-classification" in card and "## Evaluation" in card and "- top1: " in card
    assert transformers.AutoModel.from_pretrained(folder) is not None  # offline, from the folder alone
