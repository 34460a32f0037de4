"""Probing videos: can they be opened, what are they, can a clip be decoded?"""

from __future__ import annotations

from dataclasses import dataclass

from ..readers import VideoReadError, open_video
from ..sampling import ClipSampler


@dataclass(frozen=True)
class ProbeTask:
    path: str
    num_frames: int = 16
    sampling_rate: int = 4
    backend: str = "auto"


@dataclass(frozen=True)
class ProbeResult:
    path: str
    status: str  # "ok" or "bad"
    reason: str = ""
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None


def _stream_info(path: str) -> tuple[str | None, int | None, int | None]:
    """(codec, width, height) of the first video stream, from the container alone."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None, None, None
            context = container.streams.video[0].codec_context
            return context.name, context.width, context.height
    except Exception:  # the reader below reports why the file is unusable
        return None, None, None


def probe_video(task: ProbeTask) -> ProbeResult:
    """Opens the video, reads its frame count and rate, and decodes the frames of
    its centre clip (``num_frames`` at ``sampling_rate``) as training would."""
    codec, width, height = _stream_info(task.path)
    try:
        with open_video(task.path, task.backend) as video:
            info = video.info
            clip = ClipSampler(task.num_frames, task.sampling_rate).uniform_clips(info.num_frames, 1)[0]
            frames = video.get_frames(clip.tolist())
    except VideoReadError as err:
        return ProbeResult(task.path, "bad", err.reason, codec=codec, width=width, height=height)
    height, width = (height, width) if width else frames.shape[1:3]
    return ProbeResult(task.path, "ok", "", info.num_frames, round(info.fps, 3), int(width), int(height), codec)
