import numpy as np
import pytest
import torch
from conftest import indexed_frames

from video_mae.data.dataset import BadVideoLog, TooManyBadVideos, VideoClipDataset
from video_mae.data.lists import VideoRecord
from video_mae.data.loader import EpochSampler, make_loader
from video_mae.data.prep.encode import write_mp4
from video_mae.data.readers import VideoReadError
from video_mae.data.sampling import ClipSampler
from video_mae.data.transforms import EvalClipTransform, MultiScaleCropTransform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds")
    paths = []
    for i in range(4):
        path = folder / f"v{i}.mp4"
        write_mp4(path, indexed_frames(30, seed=i))
        paths.append(str(path))
    (folder / "broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    return folder, paths


def dataset(records, train=True, log=None, **kwargs):
    transform = MultiScaleCropTransform(32, MEAN, STD) if train else EvalClipTransform(32, MEAN, STD)
    return VideoClipDataset(records, ClipSampler(4, 2), transform, train=train, bad_videos=log, **kwargs)


def test_items_hold_k_clips_from_one_decode(videos):
    _, paths = videos
    records = [VideoRecord(row=i, path=p, label=i) for i, p in enumerate(paths)]
    item = dataset(records, clips_per_video=3)[2]
    assert item["video"].shape == (3, 3, 4, 32, 32)
    assert (item["label"], item["row"], item["replaced"]) == (2, 2, 0)


def test_items_are_deterministic_per_epoch(videos):
    _, paths = videos
    ds = dataset([VideoRecord(row=0, path=paths[0], label=0)], clips_per_video=2)
    a, b = ds[0]["video"], ds[0]["video"]
    assert torch.equal(a, b)
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0]["video"])


def test_broken_video_is_logged_and_replaced_in_training(videos, tmp_path):
    folder, paths = videos
    log = BadVideoLog(tmp_path / "bad_videos.txt")
    records = [VideoRecord(row=0, path=str(folder / "broken.mp4"), label=7)] + [
        VideoRecord(row=i + 1, path=p, label=i) for i, p in enumerate(paths)
    ]
    item = dataset(records, log=log, seed=3)[0]
    assert item["replaced"] >= 1 and item["label"] != 7
    lines = (tmp_path / "bad_videos.txt").read_text().splitlines()
    assert lines and all(line.startswith(str(folder / "broken.mp4") + "\tcannot open") for line in lines)


def test_retries_are_bounded(videos, tmp_path):
    folder, _ = videos
    records = [VideoRecord(row=i, path=str(folder / f"missing{i}.mp4"), label=0) for i in range(3)]
    log = BadVideoLog(tmp_path / "bad.txt")
    with pytest.raises(TooManyBadVideos, match=r"4 unreadable videos in a row .*data.max_retries=3"):
        dataset(records, log=log, max_retries=3)[0]
    lines = (tmp_path / "bad.txt").read_text().splitlines()
    assert len(lines) == 4 and all("missing: file not found" in line for line in lines)


def test_evaluation_never_swaps_a_video(videos, tmp_path):
    folder, paths = videos
    log = BadVideoLog(tmp_path / "bad.txt")
    records = [VideoRecord(row=0, path=str(folder / "broken.mp4"), label=0), VideoRecord(row=1, path=paths[0], label=1)]
    with pytest.raises(VideoReadError, match="broken.mp4: cannot open"):
        dataset(records, train=False, log=log)[0]
    assert "broken.mp4" in (tmp_path / "bad.txt").read_text()


def test_segments_use_only_their_frames(videos):
    _, paths = videos
    # 30 frames at 24 fps; 0.5 s to 1.0 s = frames 12..23.
    record = VideoRecord(row=0, path=paths[0], label=0, start=0.5, end=1.0)
    ds = dataset([record], train=False)
    from video_mae.data.readers import open_video

    with open_video(paths[0]) as video:
        assert ds.frame_range(record, video.info.num_frames, video.info.fps) == (12, 24)


def test_workers_log_bad_videos_and_count_replacements(videos, tmp_path):
    folder, paths = videos
    log = BadVideoLog(tmp_path / "bad.txt")
    records = [VideoRecord(row=i, path=p, label=i) for i, p in enumerate(paths)]
    records += [VideoRecord(row=4, path=str(folder / "broken.mp4"), label=9)]
    ds = dataset(records, log=log)
    loader = make_loader(ds, EpochSampler(len(ds), seed=0, epoch=0), batch_size=5, num_workers=2, timeout_s=60)
    (batch,) = list(loader)
    assert batch["video"].shape == (5, 1, 3, 4, 32, 32)
    assert int(batch["replaced"].sum()) >= 1
    assert "broken.mp4\tcannot open" in (tmp_path / "bad.txt").read_text()


def test_epoch_sampler_resumes_mid_epoch():
    full = list(EpochSampler(20, seed=1, epoch=3))
    assert sorted(full) == list(range(20))
    assert list(EpochSampler(20, seed=1, epoch=3, start=8)) == full[8:]
    assert full != list(EpochSampler(20, seed=1, epoch=4))
    assert np.array_equal(EpochSampler(5, 0, 0, shuffle=False).order(), np.arange(5))


def test_decoding_at_a_reduced_size_gives_the_same_clips_within_resampling_error(tmp_path):
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"large{seed}.mp4")
        write_mp4(paths[-1], indexed_frames(20, height=96, width=128, seed=seed))
    records = [VideoRecord(row=0, path=str(paths[0]), label=0)]
    full = dataset(records, train=False)[0]["video"]
    reduced = dataset(records, train=False, decode_short_side=40)[0]["video"]
    assert reduced.shape == full.shape == (1, 3, 4, 32, 32)
    # Normalised units (one grey level is about 0.017): under 20 grey levels apart on these
    # sharp-edged blocks, but apart (the frames were decoded at 40x53, not at 96x128).
    error = (reduced - full).abs().mean().item()
    assert 0 < error < 0.3
    other = dataset([VideoRecord(row=0, path=str(paths[1]), label=0)], train=False)[0]["video"]
    assert (other - full).abs().mean().item() > 2 * error


def test_decode_short_side_below_the_crop_is_refused():
    from video_mae.data.settings import DataSettings

    with pytest.raises(ValueError, match="data.decode_short_side"):
        DataSettings(name="t", train_list="unused", crop_size=224, decode_short_side=160)


def test_a_cached_dataset_gives_the_same_clips_and_decodes_each_video_once(indexed_video, monkeypatch):
    import video_mae.data.dataset as dataset_module
    from video_mae.data.dataset import VideoClipDataset
    from video_mae.data.lists import VideoRecord
    from video_mae.data.sampling import ClipSampler
    from video_mae.data.transforms import MultiScaleCropTransform

    path, _ = indexed_video
    records = [VideoRecord(row=i, path=str(path), label=0) for i in range(3)]

    def make(cache: bool) -> VideoClipDataset:
        transform = MultiScaleCropTransform(32, (0.5,) * 3, (0.25,) * 3, normalize=False)
        return VideoClipDataset(records, ClipSampler(4, 2), transform, train=True, backend="pyav", clips_per_video=2, cache_decoded=cache)

    opened = []
    real_open = dataset_module.open_video
    monkeypatch.setattr(dataset_module, "open_video", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    plain, cached = make(False), make(True)
    for epoch in range(2):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(3):
            assert torch.equal(plain[i]["video"], cached[i]["video"])
    # 6 reads without the cache, one with it (the three rows are the same file).
    assert len(opened) == 6 + 1
