import av
import numpy as np

from video_mae.data.demo import CLASSES, DemoSpec, ensure_demo_dataset, render_video
from video_mae.data.lists import read_data_list
from video_mae.data.readers import PyAVVideo

SPEC = dict(videos_per_class=2, val_videos_per_class=1, num_frames=24, height=48, width=64)


def test_demo_dataset_is_real_h264_with_standard_lists(demo_cache):
    demo = ensure_demo_dataset(DemoSpec(cache_dir=str(demo_cache), **SPEC))
    train, val = read_data_list(demo.train_list), read_data_list(demo.val_list)
    assert len(CLASSES) >= 6
    assert len(train) == 2 * len(CLASSES) and len(val) == len(CLASSES)
    assert sorted({r.label for r in train}) == list(range(len(CLASSES)))
    with av.open(train[0].path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (64, 48)
    with PyAVVideo(val[-1].path) as video:
        assert video.info.num_frames == 24
    # Second call: cached, nothing regenerated.
    mtime = demo.train_list.stat().st_mtime_ns
    assert ensure_demo_dataset(DemoSpec(cache_dir=str(demo_cache), **SPEC)).train_list.stat().st_mtime_ns == mtime


def test_generation_is_deterministic(tmp_path):
    spec = dict(SPEC, videos_per_class=1, val_videos_per_class=1)
    a = ensure_demo_dataset(DemoSpec(cache_dir=str(tmp_path / "a"), **spec))
    b = ensure_demo_dataset(DemoSpec(cache_dir=str(tmp_path / "b"), **spec))
    for ra, rb in zip(read_data_list(a.train_list), read_data_list(b.train_list)):
        with PyAVVideo(ra.path) as va, PyAVVideo(rb.path) as vb:
            assert np.array_equal(va.get_frames(range(24)), vb.get_frames(range(24)))


def test_class_pairs_are_time_reversals_so_no_single_frame_separates_them():
    spec = DemoSpec(**SPEC)
    for forward in range(0, len(CLASSES), 2):
        a = render_video(forward, np.random.default_rng(5), spec)
        b = render_video(forward + 1, np.random.default_rng(5), spec)
        assert np.array_equal(a[::-1], b)
        # ...and the video really moves.
        assert np.abs(a[0].astype(int) - a[-1].astype(int)).max() > 100


def test_classes_differ_in_motion():
    spec = DemoSpec(**SPEC)
    video = render_video(0, np.random.default_rng(0), spec).astype(float)  # square moving right
    background = np.median(video, axis=0)
    weight = np.abs(video - background).sum(-1)
    xs = np.arange(spec.width)
    centre_x = [(w.sum(0) * xs).sum() / w.sum() for w in weight]
    assert centre_x[-1] - centre_x[0] > 10


def test_heldout_list_holds_the_validation_videos_a_default_size_run_never_sees(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "make_demo_dataset.py"
    out = subprocess.run(
        [sys.executable, str(tool), "--out", str(tmp_path / "big"), "--videos-per-class", "1",
         "--val-videos-per-class", "3", "--heldout-after", "1"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "(16 videos)" in out
    big = ensure_demo_dataset(DemoSpec(cache_dir=str(tmp_path / "big"), videos_per_class=1, val_videos_per_class=3))
    small = ensure_demo_dataset(DemoSpec(cache_dir=str(tmp_path / "small"), videos_per_class=1, val_videos_per_class=1))
    heldout = read_data_list(big.root / "heldout.txt")
    assert [(Path(r.path).relative_to(big.root).as_posix(), r.label) for r in heldout] == [
        (f"val/{name}/{i:04d}.mp4", label) for label, name in enumerate(CLASSES) for i in (1, 2)
    ]
    # The default-size validation set is the first video of each class, which heldout.txt leaves out.
    default_val = [Path(r.path).relative_to(small.root).as_posix() for r in read_data_list(small.val_list)]
    big_val = [Path(r.path).relative_to(big.root).as_posix() for r in read_data_list(big.val_list)]
    assert set(default_val) < set(big_val)
    assert set(default_val).isdisjoint(Path(r.path).relative_to(big.root).as_posix() for r in heldout)
    assert all(Path(r.path).is_file() for r in heldout)

