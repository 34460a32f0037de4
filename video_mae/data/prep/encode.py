"""Writing H.264 mp4 files with PyAV (the demo dataset and the tests use it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 24,
    crf: int = 18,
    keyframe_interval: int = 16,
) -> None:
    """Encodes uint8 RGB frames [T, H, W, 3] (H and W even, as yuv420p needs)
    to an H.264 mp4. Single-threaded x264 so the same frames give the same bytes."""
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"H.264 (yuv420p) needs even height and width, got {frames.shape[1]}x{frames.shape[2]}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "g": str(keyframe_interval), "threads": "1"}
        for image in frames:
            # Converted here on one thread: left to the encoder (PyAV 18), repeated encodes
            # of the same frames came out different more often.
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p", threads=1)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
