import numpy as np
import pytest

from video_mae.data.sampling import ClipSampler


def test_full_stride_when_the_video_is_long_enough():
    sampler = ClipSampler(num_frames=16, sampling_rate=4)
    assert sampler.span == 61
    clip = sampler.clip_at(10, available=100)
    assert clip.tolist() == list(range(10, 71, 4))


def test_short_video_shrinks_the_stride():
    sampler = ClipSampler(num_frames=16, sampling_rate=4)
    # 40 frames: stride (40 - 1) // 15 = 2, covering 31 frames.
    assert sampler.stride_for(40) == 2
    clips = sampler.uniform_clips(40, 3)
    assert [c.tolist()[:3] for c in clips] == [[0, 2, 4], [4, 6, 8], [9, 11, 13]]
    assert all(c[-1] <= 39 for c in clips)


def test_very_short_video_repeats_frames_in_order():
    sampler = ClipSampler(num_frames=8, sampling_rate=4)
    clip = sampler.uniform_clips(3, 1)[0]
    assert clip.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_random_clips_stay_inside_the_video_and_follow_the_seed():
    sampler = ClipSampler(num_frames=8, sampling_rate=2)
    a = sampler.random_clips(50, 20, np.random.default_rng(1))
    b = sampler.random_clips(50, 20, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(c.min() >= 0 and c.max() < 50 and np.all(np.diff(c) == 2) for c in a)
    assert len({int(c[0]) for c in a}) > 5


def test_uniform_clips_cover_start_and_end():
    clips = ClipSampler(num_frames=4, sampling_rate=2).uniform_clips(30, 5)
    assert clips[0][0] == 0 and clips[-1][-1] == 29


@pytest.mark.parametrize("kwargs", [{"num_frames": 0, "sampling_rate": 1}, {"num_frames": 4, "sampling_rate": 0}])
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError, match="data."):
        ClipSampler(**kwargs)


def test_no_frames_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        ClipSampler(4, 2).uniform_clips(0, 1)


def test_segment_sampling_takes_one_frame_per_segment():
    sampler = ClipSampler(num_frames=4, sampling_rate=99, mode="segments")
    # 40 frames: segments [0,10), [10,20), [20,30), [30,40).
    assert sampler.uniform_clips(40, 1)[0].tolist() == [5, 15, 25, 35]
    assert [c.tolist() for c in sampler.uniform_clips(40, 2)] == [[2, 12, 22, 32], [7, 17, 27, 37]]
    for clip in sampler.random_clips(40, 10, np.random.default_rng(0)):
        assert [int(f) // 10 for f in clip] == [0, 1, 2, 3]
    assert sampler.uniform_clips(3, 1)[0].tolist() == [0, 0, 1, 2]
    with pytest.raises(ValueError, match="data.sampling"):
        ClipSampler(4, 1, mode="tsn")


def test_repeated_clips_share_one_short_span():
    sampler = ClipSampler(num_frames=4, sampling_rate=2)
    rng = np.random.default_rng(0)
    same = sampler.random_clips(100, 4, rng, spread=0)
    assert all(np.array_equal(c, same[0]) for c in same)
    for _ in range(20):
        near = sampler.random_clips(100, 4, rng, spread=5)
        starts = [int(c[0]) for c in near]
        assert max(starts) - min(starts) <= 5
    anywhere = sampler.random_clips(100, 8, np.random.default_rng(1), spread=None)
    assert max(int(c[0]) for c in anywhere) - min(int(c[0]) for c in anywhere) > 10
