import os

import numpy as np
import pytest
from conftest import indexed_frames, read_code

from video_mae.data.prep.encode import write_mp4
from video_mae.data.readers import (
    DecordVideo,
    PyAVVideo,
    VideoReadError,
    decord_available,
    open_video,
    read_frames,
    resolve_backend,
    scaled_size,
    torchcodec_problem,
)

TORCHCODEC = torchcodec_problem() is None
BACKENDS = ["pyav"] + (["decord"] if decord_available() else []) + (["torchcodec"] if TORCHCODEC else [])
INDEX_SETS = [[0, 1, 2, 3], [5, 9, 13, 17, 21], [59], [40, 12, 12, 3], list(range(0, 60, 4)), [58, 59]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_returns_the_requested_frames(indexed_video, backend):
    path, count = indexed_video
    with open_video(str(path), backend) as video:
        assert video.info.num_frames == count
        assert video.info.fps == pytest.approx(25.0)
        for indices in INDEX_SETS:
            frames = video.get_frames(indices)
            assert frames.dtype == np.uint8 and frames.shape == (len(indices), 48, 64, 3)
            assert [read_code(f) for f in frames] == indices


@pytest.mark.skipif(not decord_available(), reason="decord is not installed on this platform")
def test_decord_and_pyav_agree(indexed_video):
    path, _ = indexed_video
    original = indexed_frames(60)
    with DecordVideo(str(path)) as d, PyAVVideo(str(path)) as p:
        for indices in INDEX_SETS:
            a, b = d.get_frames(indices), p.get_frames(indices)
            # Same frames, same colour conversion (both use FFmpeg's): at most a rounding step apart.
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
            # And close to what was encoded (lossy H.264 with 4:2:0 chroma on saturated 8-px blocks).
            assert np.abs(a.astype(float) - original[indices]).mean() < 8
            assert [read_code(f) for f in a] == indices


def test_reads_after_a_backward_jump(indexed_video):
    path, _ = indexed_video
    with PyAVVideo(str(path)) as video:
        assert read_code(video.get_frames([50])[0]) == 50
        assert read_code(video.get_frames([2])[0]) == 2


def audio_only(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_files_fail_with_a_reason(tmp_path, indexed_video, backend):
    good = indexed_video[0].read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.mp4").write_bytes(b"this is not a video\n" * 50)
    audio_only(tmp_path / "audio.m4a")
    expected = {
        "missing.mp4": "missing: file not found",
        "empty.mp4": "empty file (0 bytes)",
        "truncated.mp4": "cannot open",
        "text.mp4": "cannot open",
        "audio.m4a": "cannot open" if backend == "decord" else "no video stream",
    }
    for name, reason in expected.items():
        with pytest.raises(VideoReadError) as info:
            with open_video(str(tmp_path / name), backend) as video:
                video.get_frames([0])
        assert info.value.reason.startswith(reason), (name, info.value.reason)
        assert info.value.path == str(tmp_path / name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_out_of_range(indexed_video, backend):
    with open_video(str(indexed_video[0]), backend) as video:
        with pytest.raises(VideoReadError, match="frame index 60 out of range for 60 frames"):
            video.get_frames([3, 60])


def test_odd_sized_frames_are_rejected_before_encoding(tmp_path):
    with pytest.raises(ValueError, match="even height and width"):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 15, 16, 3), np.uint8))


def test_backend_names():
    assert resolve_backend("pyav") == "pyav"
    assert resolve_backend("auto") in ("decord", "pyav")
    with pytest.raises(ValueError, match="data.reader must be one of"):
        resolve_backend("opencv")


@pytest.mark.skipif(not decord_available(), reason="decord is not installed on this platform")
def test_auto_falls_back_to_pyav_where_decord_fails(tmp_path):
    # decord 0.6 cannot copy out frames 48 pixels wide; PyAV reads them.
    path = tmp_path / "narrow.mp4"
    write_mp4(path, indexed_frames(12, height=32, width=48))
    with pytest.raises(VideoReadError, match="decode failed"):
        with open_video(str(path), "decord") as video:
            video.get_frames([0])
    with open_video(str(path), "auto") as video:
        frames = video.get_frames([3, 7])
        assert video.backend == "pyav"
    assert frames.shape == (2, 32, 48, 3)


@pytest.fixture(scope="module")
def large_videos(tmp_path_factory):
    """A landscape (192x128) and a portrait (128x192) H.264 clip of coloured blocks."""
    folder = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(3)
    base = rng.integers(30, 220, size=(12, 8, 12, 3)).repeat(16, 1).repeat(16, 2).astype(np.uint8)
    landscape, portrait = folder / "landscape.mp4", folder / "portrait.mp4"
    write_mp4(landscape, base, fps=25, keyframe_interval=6)
    write_mp4(portrait, np.ascontiguousarray(base.transpose(0, 2, 1, 3)), fps=25, keyframe_interval=6)
    return {"landscape": landscape, "portrait": portrait}


@pytest.mark.parametrize("backend", BACKENDS + (["auto"] if decord_available() else []))
@pytest.mark.parametrize("orientation,shape", [("landscape", (64, 96)), ("portrait", (96, 64))])
def test_decoding_at_a_reduced_size_matches_decoding_then_shrinking(large_videos, backend, orientation, shape):
    import torch
    import torch.nn.functional as F

    path = str(large_videos[orientation])
    indices = [0, 3, 7, 11]
    full = read_frames(path, indices, backend)
    try:
        small = read_frames(path, indices, backend, short_side=64)
    except VideoReadError as err:
        # decord cannot output some widths (0.6.0: 16, 24, 48, 72; decord2 3.4.0: 16, 24, 32, 48, 96);
        # 'auto' then reads with PyAV, which the 'auto' case checks.
        if backend == "decord" and "size must exactly match" in err.reason:
            pytest.skip(f"decord cannot output {shape[1]} px wide frames")
        raise
    assert small.dtype == np.uint8 and small.shape == (4, *shape, 3)
    # The reference: full-size frames shrunk with antialiased bicubic interpolation
    # (FFmpeg's default scaler, which decord uses and PyAV is told to use).
    full_chw = torch.from_numpy(full).permute(0, 3, 1, 2).float()
    reference = F.interpolate(full_chw, shape, mode="bicubic", antialias=True).permute(0, 2, 3, 1).numpy()
    error = np.abs(small.astype(float) - reference).mean()
    assert error < 4
    assert np.abs(small.astype(float) - reference[:, ::-1]).mean() > 5 * error  # the test can tell images apart
    # A short side above two thirds of the frame's own leaves frames untouched (never scaled up).
    assert np.array_equal(read_frames(path, indices, backend, short_side=128), full)
    assert np.array_equal(read_frames(path, indices, backend, short_side=86), full)
    assert np.array_equal(read_frames(path, indices, backend, short_side=500), full)


@pytest.mark.skipif(not decord_available(), reason="decord is not installed on this platform")
def test_auto_reader_falls_back_when_decord_cannot_output_the_reduced_size(large_videos):
    # decord 0.6 fails on output widths such as 48; 'auto' then reads with PyAV.
    with open_video(str(large_videos["portrait"]), "auto", short_side=48) as video:
        frames = video.get_frames([0, 5])
        assert frames.shape == (2, 72, 48, 3) and video.backend == "pyav"


def test_scaled_size_keeps_the_aspect_ratio_and_never_enlarges():
    assert scaled_size(1280, 720, 256) == (455, 256)
    assert scaled_size(720, 1280, 256) == (256, 455)
    assert scaled_size(320, 240, 256) is None
    assert scaled_size(640, 272, 256) is None  # too close to be worth a scaling pass
    assert scaled_size(384, 400, 256) == (256, 267)
    assert scaled_size(320, 240, None) is None
    with pytest.raises(ValueError, match="short_side"):
        open_video("any.mp4", "pyav", short_side=0)


def test_torchcodec_is_usable_where_ci_says_so():
    # CI installs FFmpeg's libraries and sets this, so the torchcodec cases above cannot be skipped there.
    if os.environ.get("VMAE_REQUIRE_TORCHCODEC") != "1":
        pytest.skip("VMAE_REQUIRE_TORCHCODEC is not set")
    assert torchcodec_problem() is None


def test_a_gpu_reader_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="torchcodec"):
        resolve_backend("torchcodec-cuda")


def test_gpu_decoding_asks_for_loading_in_the_main_process():
    from video_mae.data.settings import DataSettings

    with pytest.raises(ValueError, match="data.num_workers=0"):
        DataSettings(name="x", reader="torchcodec-cuda", num_workers=2)
    with pytest.raises(ValueError, match="torchcodec-cuda"):
        DataSettings(name="x", reader="nvdec")
