import av
import numpy as np
import pytest
from conftest import TINY_DEMO

from video_mae.data.demo import CLASSES, SPLITS, WORLDS, DemoSpec, ensure_demo_dataset, render_video
from video_mae.data.lists import read_data_list
from video_mae.data.readers import PyAVVideo

SPEC = TINY_DEMO


def test_demo_dataset_is_real_h264_with_standard_lists(demo_cache):
    demo = ensure_demo_dataset(DemoSpec(cache_dir=str(demo_cache), **SPEC))
    train, val = read_data_list(demo.train_list), read_data_list(demo.val_list)
    assert len(CLASSES) >= 6
    assert len(train) == 2 * len(CLASSES) and len(val) == len(CLASSES)
    assert len(read_data_list(demo.test_list)) == len(CLASSES)
    pool = read_data_list(demo.list_path("unlabelled"))
    # The splits are different videos.
    paths = [r.path for split in SPLITS for r in read_data_list(demo.list_path(split))]
    assert len(paths) == len(set(paths)) == len(pool) + len(train) + 2 * len(val)
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


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_class_pairs_are_time_reversals_so_no_single_frame_separates_them(world):
    spec = DemoSpec(**SPEC, world=world)
    for forward in range(0, len(CLASSES), 2):
        a = render_video(forward, np.random.default_rng(5), spec)
        b = render_video(forward + 1, np.random.default_rng(5), spec)
        assert np.array_equal(a[::-1], b)
        # ...and the video really moves.
        assert np.abs(a[0].astype(int) - a[-1].astype(int)).max() > 100


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_the_object_moves_as_its_class_says(world):
    spec = DemoSpec(**SPEC, world=world)
    # Class 0 moves right (shapes) or along a clockwise arc (textured); class 2 moves down (shapes)
    # or down and right (textured): the object's centre moves in x (class 0, shapes), in y (class 2).
    xs, ys = np.arange(spec.width), np.arange(spec.height)[:, None]
    for label, axis in ((0, "x"), (2, "y")):
        if world == "textured" and label == 0:
            continue  # an arc: checked by the time-reversal test only
        moved = []
        for seed in range(4):
            video = render_video(label, np.random.default_rng(seed), spec).astype(float)
            saturation = video.max(-1) - video.min(-1)  # the objects are saturated, the backgrounds are not
            weight = (saturation > 0.45 * 255).astype(float)
            centre = [((w * (xs if axis == "x" else ys)).sum() / w.sum()) for w in weight]
            moved.append(centre[-1] - centre[0])
        assert min(moved) > 4, moved


def test_make_demo_dataset_writes_every_split(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "make_demo_dataset.py"
    out = subprocess.run(
        [sys.executable, str(tool), "--out", str(tmp_path), "--world", "textured", "--unlabelled-videos-per-class", "1",
         "--videos-per-class", "1", "--val-videos-per-class", "1", "--test-videos-per-class", "2"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "test:" in out and "(16 videos)" in out and "arc_clockwise" in out
    spec = DemoSpec(cache_dir=str(tmp_path), world="textured", unlabelled_videos_per_class=1, videos_per_class=1,
                    val_videos_per_class=1, test_videos_per_class=2)  # fmt: skip
    test = read_data_list(ensure_demo_dataset(spec).test_list)
    assert len(test) == 16 and all(Path(r.path).is_file() for r in test)


def test_a_bigger_split_starts_with_the_videos_of_a_smaller_one():
    small, big = DemoSpec(**dict(SPEC, val_videos_per_class=1)), DemoSpec(**dict(SPEC, val_videos_per_class=3))
    assert small != big
    from video_mae.data.demo import _SPLIT_SEEDS

    a = render_video(3, np.random.default_rng([small.seed, _SPLIT_SEEDS["val"], 3, 0]), small)
    b = render_video(3, np.random.default_rng([big.seed, _SPLIT_SEEDS["val"], 3, 0]), big)
    assert np.array_equal(a, b)
