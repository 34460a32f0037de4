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
