"""Fault injection: every way a video can be bad gives correct frames or a recorded,
named failure; hangs time out; kills and full disks leave the last checkpoint intact."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import indexed_frames, read_code

from video_mae.checkpoint import load_checkpoint
from video_mae.cli import data_tool
from video_mae.data.dataset import BadVideoLog, VideoClipDataset, run_with_deadline
from video_mae.data.lists import VideoRecord
from video_mae.data.readers import VideoReadError, decord_available, open_video, torchcodec_problem
from video_mae.data.sampling import ClipSampler
from video_mae.data.transforms import EvalClipTransform, MultiScaleCropTransform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BACKENDS = ["pyav", "auto"] + (["decord"] if decord_available() else []) + ([] if torchcodec_problem() else ["torchcodec"])


def write_video(path, frames, codec="libx264", container=None, fps=25, pix_fmt="yuv420p", pts=None, options=None, muxer=None):
    with av.open(str(path), "w", format=container, options=muxer or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = {"g": "12", **(options or {})}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = int(pts[i]), Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def no_frames_video(path):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()  # a header, then not a single frame


def audio_only(path):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Good files of many kinds (name -> (path, frame count)) and bad files (name -> (path, reason prefix))."""
    root = tmp_path_factory.mktemp("zoo")
    good, bad = {}, {}
    frames = indexed_frames(40)
    write_video(root / "h264.mp4", frames)
    good["h264.mp4"] = 40
    write_video(root / "vp9.webm", frames, codec="libvpx-vp9")
    good["vp9.webm"] = 40
    write_video(root / "mpeg4.mkv", frames, codec="mpeg4", container="matroska")
    good["mpeg4.mkv"] = 40
    write_video(root / "short.mp4", frames[:3])
    good["short.mp4"] = 3
    portrait = np.ascontiguousarray(np.concatenate([indexed_frames(20, height=96, width=64)], axis=0))
    write_video(root / "portrait.mp4", portrait)
    good["portrait.mp4"] = 20
    gray = indexed_frames(20).mean(axis=-1, keepdims=True).repeat(3, axis=-1).astype(np.uint8)
    write_video(root / "gray.mkv", gray, codec="ffv1", container="matroska", pix_fmt="gray")
    good["gray.mkv"] = 20
    write_video(root / "vfr.mp4", frames, pts=np.cumsum([0] + [1, 3, 1, 2] * 10)[:40])
    good["vfr.mp4"] = 40
    large = np.zeros((3, 2160, 3840, 3), np.uint8)
    large[:, :8, :64] = indexed_frames(3)[:, :8, :64]
    write_video(root / "large.mp4", large, options={"preset": "ultrafast"})
    good["large.mp4"] = 3

    data = (root / "h264.mp4").read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    bad["empty.mp4"] = "empty file"
    bad["missing.mp4"] = "missing"
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    bad["truncated.mp4"] = "cannot open"
    write_video(root / "faststart.mp4", frames, muxer={"movflags": "+faststart"})
    cut = (root / "faststart.mp4").read_bytes()
    (root / "truncated_faststart.mp4").write_bytes(cut[: len(cut) // 2])
    bad["truncated_faststart.mp4"] = "decode failed"
    (root / "text.mp4").write_text("this is not a video\n" * 100)
    bad["text.mp4"] = "cannot open"
    audio_only(root / "audio.m4a")
    bad["audio.m4a"] = "no video stream"
    no_frames_video(root / "noframes.mp4")
    bad["noframes.mp4"] = ("no frames", "no video stream")  # FFmpeg sees no usable stream without frames
    corrupt = bytearray(cut)
    middle = len(corrupt) // 2
    corrupt[middle : middle + 4000] = os.urandom(4000)
    (root / "corrupt_middle.mp4").write_bytes(bytes(corrupt))
    return root, good, bad


@pytest.mark.parametrize("backend", BACKENDS)
def test_good_files_of_every_kind_give_the_right_frames(zoo, backend):
    root, good, _ = zoo
    for name, count in good.items():
        if backend == "decord" and name == "gray.mkv":
            continue  # decord 0.6 rejects the gray pixel format; 'auto' falls back to PyAV (checked below)
        with open_video(str(root / name), backend) as video:
            assert video.info.num_frames == count, name
            indices = sorted({0, count // 2, count - 1})
            frames = video.get_frames(indices)
            assert frames.dtype == np.uint8 and frames.shape[-1] == 3, name
            if name != "gray.mkv":  # the code survives colour, not the gray conversion's rounding
                assert [read_code(f) for f in frames] == indices, (name, backend)
    with open_video(str(root / "portrait.mp4"), backend) as video:
        assert video.get_frames([0]).shape[1:3] == (96, 64)
    with open_video(str(root / "gray.mkv"), "auto") as video:
        frame = video.get_frames([5])[0].astype(int)
        assert (frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_files_are_named_failures(zoo, backend):
    root, _, bad = zoo
    for name, reason in bad.items():
        if backend == "decord" and name in ("audio.m4a", "noframes.mp4"):
            reason = "cannot open"  # decord reads the whole index on open and does not say why; auto asks PyAV
        if backend == "decord" and name == "truncated_faststart.mp4":
            reason = ("cannot open", "decode failed")  # decord 0.6 fails on open, decord2 3.4 on the first decode
        with pytest.raises(VideoReadError) as info:
            with open_video(str(root / name), backend) as video:
                video.get_frames(list(range(video.info.num_frames)))
        assert info.value.reason.startswith(reason), (name, backend, info.value.reason)


def test_corrupt_middle_gives_frames_or_a_named_failure(zoo):
    root, _, _ = zoo
    for backend in BACKENDS:
        try:
            with open_video(str(root / "corrupt_middle.mp4"), backend) as video:
                frames = video.get_frames(list(range(video.info.num_frames)))
            assert frames.shape[1:] == (48, 64, 3)
        except VideoReadError as err:
            assert err.reason.split(":")[0] in ("decode failed", "cannot open"), err.reason


def test_fewer_frames_than_a_clip_and_portrait_clips_through_the_dataset(zoo, tmp_path):
    root, _, _ = zoo
    records = [VideoRecord(0, str(root / "short.mp4"), 0), VideoRecord(1, str(root / "portrait.mp4"), 1)]
    dataset = VideoClipDataset(records, ClipSampler(8, 4), MultiScaleCropTransform(32, MEAN, STD), train=True)
    short, portrait = dataset[0], dataset[1]
    assert short["video"].shape == portrait["video"].shape == (1, 3, 8, 32, 32)
    assert short["replaced"] == 0 and portrait["replaced"] == 0


def test_every_failure_is_recorded_with_its_reason(zoo, tmp_path):
    root, good, bad = zoo
    log = BadVideoLog(tmp_path / "bad_videos.txt")
    names = list(good) + list(bad)
    records = [VideoRecord(i, str(root / name), 0) for i, name in enumerate(names)]
    dataset = VideoClipDataset(
        records, ClipSampler(4, 2), EvalClipTransform(32, MEAN, STD), train=False,
        bad_videos=log, report_unreadable=True, decode_timeout_s=60,
    )  # fmt: skip
    failed = {Path(dataset.records[i].path).name: dataset[i]["failed"] for i in range(len(names)) if dataset[i]["video"] is None}
    assert set(failed) == set(bad) - {"corrupt_middle.mp4"} | ({"corrupt_middle.mp4"} & set(failed))
    for name, reason in bad.items():
        if name in failed:
            assert failed[name].startswith(reason) or name == "corrupt_middle.mp4", (name, failed[name])
    logged = dict(line.split("\t", 1) for line in (tmp_path / "bad_videos.txt").read_text().splitlines())
    for name in failed:
        assert str(root / name) in logged


@pytest.fixture
def fifo(tmp_path):
    """A named pipe: opening it for reading blocks until a writer appears, like a stuck mount."""
    path = tmp_path / "hang.mp4"
    os.mkfifo(path)
    yield path
    # A writer end releases the abandoned reader thread, which then sees end-of-file.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))
    except OSError:
        pass


def test_a_hanging_decode_times_out_as_a_failure(fifo, zoo, tmp_path):
    root, _, _ = zoo
    log = BadVideoLog(tmp_path / "bad.txt")
    records = [VideoRecord(0, str(fifo), 0)] + [VideoRecord(i, str(root / "h264.mp4"), 1) for i in range(1, 6)]
    dataset = VideoClipDataset(records, ClipSampler(4, 2), MultiScaleCropTransform(32, MEAN, STD), train=True,
                               bad_videos=log, decode_timeout_s=1.0, max_retries=3, seed=1)  # fmt: skip
    item = dataset[0]
    assert item["replaced"] >= 1 and item["label"] == 1
    assert f"{fifo}\ttimeout: no frames after 1 s" in (tmp_path / "bad.txt").read_text()


def test_deadline_passes_results_and_errors_through():
    assert run_with_deadline(lambda: 7, 5, "x") == 7
    with pytest.raises(KeyError):
        run_with_deadline(lambda: {}["k"], 5, "x")
    event = threading.Event()
    with pytest.raises(VideoReadError, match="timeout"):
        run_with_deadline(event.wait, 0.2, "x")
    event.set()


def test_vmae_data_check_flags_exactly_the_bad_files(zoo, fifo, tmp_path, capsys):
    root, good, bad = zoo
    lines = [f"{root / name} 0" for name in good] + [f"{root / name} 1" for name in bad if name != "corrupt_middle.mp4"]
    lines.append(f"{fifo} 2")
    data_list = tmp_path / "mixed.txt"
    data_list.write_text("\n".join(lines) + "\n")
    code = data_tool(["check", str(data_list), "--workers", "2", "--timeout", "20", "--num-frames", "4", "--sampling-rate", "2"])
    assert code == 1
    rows = list(csv.DictReader((tmp_path / "mixed.report.csv").open()))
    flagged = {Path(r["path"]).name: r["reason"] for r in rows if r["status"] == "bad"}
    assert set(flagged) == (set(bad) - {"corrupt_middle.mp4"}) | {"hang.mp4"}
    assert flagged["hang.mp4"].startswith("timeout")
    assert flagged["missing.mp4"].startswith("missing") and flagged["empty.mp4"].startswith("empty file")
    ok = {Path(r["path"]).name: r for r in rows if r["status"] == "ok"}
    assert ok["vp9.webm"]["codec"] == "vp9" and ok["portrait.mp4"]["height"] == "96" and ok["h264.mp4"]["frames"] == "40"
    clean = (tmp_path / "mixed.clean.txt").read_text().splitlines()
    assert len(clean) == len(good)
    assert data_tool(["check", str(tmp_path / "clean_only.txt")]) == 2  # a missing list is bad input


def test_reencode_keeps_frames_and_structure_and_resumes(zoo, tmp_path):
    root, _, _ = zoo
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "b").mkdir(parents=True)
    write_video(tmp_path / "src" / "a" / "one.mkv", indexed_frames(30, height=96, width=128), codec="mpeg4", container="matroska")
    write_video(tmp_path / "src" / "b" / "two.mp4", indexed_frames(24, height=96, width=128))
    (tmp_path / "src" / "b" / "bad.mp4").write_bytes(b"junk")
    data_list = tmp_path / "src" / "all.txt"
    data_list.write_text("a/one.mkv 0\nb/two.mp4 1\nb/bad.mp4 2\n")
    args = ["reencode", str(data_list), "--out-root", str(tmp_path / "out"), "--short-side", "48", "--workers", "2"]
    assert data_tool(args) == 1  # one source is bad
    out = read_list(tmp_path / "out" / "all.txt")
    assert [(Path(p).relative_to(tmp_path / "out").as_posix(), label) for p, label in out] == [("a/one.mp4", 0), ("b/two.mp4", 1)]
    with open_video(str(tmp_path / "out" / "a" / "one.mp4"), "pyav") as video:
        assert video.info.num_frames == 30
        frames = video.get_frames([0, 29])
        assert frames.shape[1:3] == (48, 64)
    before = (tmp_path / "out" / "a" / "one.mp4").stat().st_mtime_ns
    assert data_tool(args) == 1
    assert (tmp_path / "out" / "a" / "one.mp4").stat().st_mtime_ns == before  # finished files are kept


def read_list(path):
    return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in Path(path).read_text().splitlines()]


def test_sigkill_during_checkpoint_writes_leaves_the_last_one_loadable(tmp_path):
    script = textwrap.dedent(
        f"""
        import torch, sys
        from video_mae.checkpoint import save_checkpoint
        path = {str(tmp_path / "last.pt")!r}
        big = {{"w": torch.randn(4_000_000)}}
        step = 0
        while True:
            step += 1
            save_checkpoint({{"model": big, "step": step}}, path)
            print(step, flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    steps_seen = 0
    for line in process.stdout:
        steps_seen = int(line)
        if steps_seen >= 3:
            break
    process.send_signal(signal.SIGKILL)  # most likely in the middle of a 16 MB write
    process.wait()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] >= steps_seen and state["model"]["w"].shape == (4_000_000,)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert all(p.name.startswith(".last.pt.") for p in leftovers)  # at most a partial temporary file


def test_a_full_disk_during_a_save_stops_the_run_with_the_last_checkpoint_intact(tiny_pretrain_cfg, tmp_path, monkeypatch):
    import video_mae.checkpoint as checkpoint_module
    from video_mae.tasks.pretrain import run

    run(tiny_pretrain_cfg("train.epochs=1", "recon_every_epochs=0"), tmp_path)
    real_save = torch.save

    def full_disk(obj, handle):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(checkpoint_module.CheckpointError, match="No space left on device.*previous checkpoint is intact"):
        run(tiny_pretrain_cfg("train.epochs=2", "recon_every_epochs=0"), tmp_path)
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1


def test_wrong_types_labels_and_missing_files_are_reported_before_training(tiny_pretrain_cfg, demo_cache, tmp_path, caplog):
    from conftest import compose_config, tiny_finetune_overrides
    from hydra.utils import instantiate

    from video_mae.data.lists import DataListError
    from video_mae.tasks import finetune as finetune_task
    from video_mae.tasks.pretrain import run

    with pytest.raises(Exception, match="train.epochs must be int, got 'ten'"):
        instantiate(tiny_pretrain_cfg("train.epochs=ten").train, _convert_="all")
    with pytest.raises(Exception, match="data.crop_size must be int"):
        instantiate(tiny_pretrain_cfg("data.crop_size=[1,2]").data, _convert_="all")
    demo_train = next(Path(demo_cache).glob("demo_v2_*/train.txt"))
    lines = demo_train.read_text().splitlines()
    bad_labels = tmp_path / "labels.txt"
    bad_labels.write_text(
        "\n".join(f"{demo_train.parent / line.rsplit(' ', 1)[0]} {9 if i == 2 else 0}" for i, line in enumerate(lines)) + "\n"
    )
    cfg = compose_config("finetune", tiny_finetune_overrides(demo_cache) + [f"data.train_list={bad_labels}", "data.num_classes=8"])
    with pytest.raises(DataListError, match=rf"{bad_labels}:3 label 9"):
        finetune_task.run(cfg, tmp_path / "ft")
    with_missing = tmp_path / "missing.txt"
    with_missing.write_text(
        "\n".join([f"{demo_train.parent / line.rsplit(' ', 1)[0]} 0" for line in lines] + [f"{tmp_path / 'gone.mp4'} 0"] * 2) + "\n"
    )
    with caplog.at_level("WARNING"):
        run(tiny_pretrain_cfg(f"data.train_list={with_missing}", "train.epochs=1", "recon_every_epochs=0"), tmp_path / "pre")
    assert f"2 of 18 videos are missing (e.g. {with_missing}:17: {tmp_path / 'gone.mp4'}" in caplog.text
    assert f"1 rows repeat an earlier row (e.g. {with_missing}:18 repeats {with_missing}:17)" in caplog.text
