"""Video readers: frames by index as uint8 [T, H, W, 3] RGB, from decord, PyAV or torchcodec.

The readers index frames the same way, by their order of presentation time
(frame 0 is the earliest), so the same indices give the same frames whichever
reader is used. Every failure is a :class:`VideoReadError` carrying the path and
a short reason ("missing", "empty file", "cannot open: ...", ...), which the
dataset writes to ``bad_videos.txt``.

decord is fast but has no wheels for some platforms, so it is imported lazily and
``backend="auto"`` falls back to PyAV when it is absent. torchcodec (PyTorch's
decoder, the optional ``[torchcodec]`` extra) needs FFmpeg's shared libraries at
run time and is the one that decodes on the GPU (``torchcodec-cuda``); it is used
only when asked for.

With ``short_side`` set, frames whose short side is at least 1.5 times longer
come out scaled down to it (aspect ratio kept), inside the decoder's colour
conversion. This saves the full-size colour conversion and memory, not the
decoding itself, which dominates: on one core, a 16-frame clip of a 720p H.264
file took 235 -> 213 ms (decord) and a 1080p one 902 -> 823 ms. Frames only a
little larger than ``short_side`` are left alone, because the scaling pass costs
more than it saves there (640x272 to 256: 46 -> 66 ms with PyAV).
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # each backend is imported when a video is opened with it
    import av

BACKENDS = ("auto", "decord", "pyav", "torchcodec", "torchcodec-cuda")

# Scale only frames whose short side is at least this many times ``short_side``.
MIN_SCALE_FACTOR = 1.5


class VideoReadError(RuntimeError):
    """A video could not be read. ``reason`` is short and stable enough to count."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float


def _check_file(path: str) -> None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise VideoReadError(path, "missing: file not found") from None
    except OSError as err:
        raise VideoReadError(path, f"cannot stat: {err.strerror}") from None
    # Only regular files can be empty; FFmpeg also reads pipes and devices.
    if stat.S_ISREG(status.st_mode) and status.st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int] | None:
    """(width, height) with the short side at ``short_side``, or None when the frame
    is to be left at its size: ``short_side`` is None or the frame's short side is
    under ``MIN_SCALE_FACTOR`` times it (frames are never scaled up)."""
    if short_side is None or min(width, height) < MIN_SCALE_FACTOR * short_side:
        return None
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def _probe_size(path: str) -> tuple[int, int]:
    """The coded frame size from the container header (no decoding)."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream")
            context = container.streams.video[0].codec_context
            return int(context.width), int(context.height)
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(path, f"cannot open: {_first_line(err)}") from None


def _check_indices(path: str, indices: Sequence[int], num_frames: int) -> list[int]:
    wanted = [int(i) for i in indices]
    bad = [i for i in wanted if not 0 <= i < num_frames]
    if bad:
        raise VideoReadError(path, f"frame index {bad[0]} out of range for {num_frames} frames")
    return wanted


class _BatchVideo:
    """What the decord and torchcodec readers share: both decode a list of indices in
    one call (``_decode``), which is checked here for the frames it returned."""

    path: str
    info: VideoInfo

    def _set_info(self, num_frames: int, fps: float) -> None:
        if num_frames < 1:
            raise VideoReadError(self.path, "no frames")
        self.info = VideoInfo(num_frames=num_frames, fps=fps)

    def _decode(self, wanted: list[int]) -> np.ndarray:
        raise NotImplementedError

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _check_indices(self.path, indices, self.info.num_frames)
        frames = self._decode(wanted)
        if frames.shape[0] != len(wanted):
            raise VideoReadError(self.path, f"decode failed: got {frames.shape[0]} of {len(wanted)} frames")
        return frames

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DecordVideo(_BatchVideo):
    """One open video read with decord (``num_threads=1``: parallelism comes from
    DataLoader workers, and decord's own threads are a known source of hangs).
    decord needs the output size when it opens, so ``short_side`` first reads the
    frame size from the container header with PyAV."""

    def __init__(self, path: str, num_threads: int = 1, short_side: int | None = None) -> None:
        import decord  # lazy: optional on platforms without wheels

        _check_file(path)
        self.path = path
        size = scaled_size(*_probe_size(path), short_side) if short_side is not None else None
        width, height = size if size is not None else (-1, -1)
        try:
            self._reader = decord.VideoReader(path, num_threads=num_threads, ctx=decord.cpu(0), width=width, height=height)
            num_frames = len(self._reader)
            fps = float(self._reader.get_avg_fps())
        except Exception as err:  # decord raises plain RuntimeError / DECORDError
            raise VideoReadError(path, f"cannot open: {_first_line(err)}") from None
        self._set_info(num_frames, fps)

    def _decode(self, wanted: list[int]) -> np.ndarray:
        try:
            return self._reader.get_batch(wanted).asnumpy()
        except Exception as err:
            raise VideoReadError(self.path, f"decode failed: {_first_line(err)}") from None

    def close(self) -> None:
        self._reader = None


class PyAVVideo:
    """One open video read with PyAV (FFmpeg).

    On open, the packets of the video stream are read (not decoded) to list every
    frame's presentation time; frame i is the i-th smallest. Reading then seeks to
    the key frame before the first wanted frame and decodes forward to the last.
    """

    def __init__(self, path: str, short_side: int | None = None) -> None:
        import av

        _check_file(path)
        self.path = path
        try:
            self._container = av.open(path)
        except Exception as err:  # av.FFmpegError and OSError subclasses
            raise VideoReadError(path, f"cannot open: {_first_line(err)}") from None
        try:
            if not self._container.streams.video:
                raise VideoReadError(path, "no video stream")
            self._stream = self._container.streams.video[0]
            self._short_side = short_side
            self._pts = self._frame_times()
            rate = self._stream.average_rate or self._stream.guessed_rate
            fps = float(rate) if rate else 0.0
        except VideoReadError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise VideoReadError(path, f"cannot open: {_first_line(err)}") from None
        self.info = VideoInfo(num_frames=len(self._pts), fps=fps)

    def _frame_times(self) -> list[int]:
        pts = [packet.pts for packet in self._container.demux(self._stream) if packet.size > 0 and packet.pts is not None]
        if not pts:
            raise VideoReadError(self.path, "no frames")
        pts.sort()
        return pts

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _check_indices(self.path, indices, self.info.num_frames)
        needed = set(wanted)
        found = self._decode(needed, seek_to=self._pts[min(needed)])
        if len(found) < len(needed) and min(needed) > 0:
            # A seek can land after the wanted key frame in badly muxed files;
            # decoding from the first frame is slow but exact.
            found.update(self._decode(needed - found.keys(), seek_to=self._pts[0]))
        missing = sorted(needed - found.keys())
        if missing:
            raise VideoReadError(self.path, f"decode failed: frame {missing[0]} of {self.info.num_frames} could not be decoded")
        return np.stack([found[i] for i in wanted])

    def _decode(self, needed: set[int], seek_to: int) -> dict[int, np.ndarray]:
        index_of = {pts: i for i, pts in enumerate(self._pts)}
        last = max(needed)
        found: dict[int, np.ndarray] = {}
        try:
            # Seeks to the key frame at or before `seek_to`; earlier frames are skipped below.
            self._container.seek(seek_to, stream=self._stream, backward=True, any_frame=False)
            for frame in self._container.decode(self._stream):
                index = index_of.get(frame.pts)
                if index is None:
                    continue
                if index in needed:
                    found[index] = self._to_rgb(frame)
                if index >= last:
                    break
        except Exception as err:  # av.FFmpegError and friends
            raise VideoReadError(self.path, f"decode failed: {_first_line(err)}") from None
        return found

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # The frame's own size, not the header's: streams may change size mid-way.
        size = scaled_size(frame.width, frame.height, self._short_side)
        if size is None:
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="BICUBIC")

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None

    def __enter__(self) -> PyAVVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _torchcodec_reason(err: BaseException) -> str:
    """torchcodec's C++ errors start with the source file and line; keep what follows."""
    text = _first_line(err)
    head, sep, tail = text.rpartition(".cpp:")
    if sep:
        text = tail.partition(", ")[2] or text
    return text


class TorchCodecVideo(_BatchVideo):
    """One open video read with torchcodec (FFmpeg through PyTorch's own decoder).

    ``seek_mode="exact"`` scans the file once on open, so frame i is the i-th in
    presentation order, as with the other readers. ``short_side`` scales inside the
    decoder (torchcodec's ``Resize``, bilinear), sized from the container header.
    ``device="cuda"`` decodes on the GPU (NVDEC); frames come back to host memory
    because the transforms run there."""

    def __init__(self, path: str, short_side: int | None = None, device: str = "cpu") -> None:
        require_torchcodec(device)
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        _check_file(path)
        self.path = path
        size = scaled_size(*_probe_size(path), short_side) if short_side is not None else None
        transforms = [Resize((size[1], size[0]))] if size is not None else None
        try:
            self._decoder = VideoDecoder(
                path, dimension_order="NHWC", num_ffmpeg_threads=1, device=device, seek_mode="exact", transforms=transforms
            )
            metadata = self._decoder.metadata
            num_frames = int(metadata.num_frames or 0)
            fps = float(metadata.average_fps or 0.0)
        except Exception as err:  # torchcodec raises RuntimeError / ValueError
            reason = _torchcodec_reason(err)
            if "video stream is unknown" in reason:  # what torchcodec says of a file without one
                raise VideoReadError(path, "no video stream") from None
            # torchcodec's reasons are vaguer (a file without frames: "Could not seek file to
            # pts=0"); where PyAV can name the problem, that name is the reason.
            PyAVVideo(path).close()
            raise VideoReadError(path, f"cannot open: {reason}") from None
        self._set_info(num_frames, fps)

    def _decode(self, wanted: list[int]) -> np.ndarray:
        try:
            return self._decoder.get_frames_at(wanted).data.cpu().numpy()
        except Exception as err:
            raise VideoReadError(self.path, f"decode failed: {_torchcodec_reason(err)}") from None

    def close(self) -> None:
        self._decoder = None


class AutoVideo:
    """decord first, PyAV when decord cannot open or decode the file (decord fails
    on some valid files, e.g. frame widths of 16, 24, 48 or 72 pixels). ``backend``
    says which one is serving."""

    def __init__(self, path: str, short_side: int | None = None) -> None:
        self.path = path
        self.short_side = short_side
        try:
            self._video: DecordVideo | PyAVVideo = DecordVideo(path, short_side=short_side)
            self.backend = "decord"
        except VideoReadError as err:
            if err.reason.startswith(("missing", "empty")):
                raise
            self._video, self.backend = PyAVVideo(path, short_side), "pyav"
        self.info = self._video.info

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._video.get_frames(indices)
        except VideoReadError:
            if self.backend != "decord":
                raise
        self._video.close()
        self._video, self.backend = PyAVVideo(self.path, self.short_side), "pyav"
        return self._video.get_frames(indices)

    def close(self) -> None:
        self._video.close()

    def __enter__(self) -> AutoVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache  # asked on every open; the answer cannot change within a process
def torchcodec_problem() -> str | None:
    """None when torchcodec is installed and has found FFmpeg's shared libraries,
    else what is missing (torchcodec looks for FFmpeg 4 to 9 when it is imported)."""
    try:
        import torchcodec
    except ImportError:
        return 'torchcodec is not installed (pip install -e ".[torchcodec]")'
    if getattr(torchcodec, "ffmpeg_major_version", None) is not None:
        return None
    try:  # the public entry point raises torchcodec's own explanation, one per FFmpeg version
        from torchcodec.decoders import VideoDecoder

        VideoDecoder(b"")
    except Exception as err:  # noqa: BLE001 - only its text is used
        missing = sorted(set(re.findall(r"(lib(?:av|sw)\w+\.so\.\d+): cannot open shared object file", str(err))))
    else:
        missing = []
    named = f" (looked for {', '.join(missing)})" if missing else ""
    return (
        f"torchcodec found none of FFmpeg's shared libraries{named}: install FFmpeg 4 to 9 with its libraries "
        "(e.g. apt-get install ffmpeg, or conda install ffmpeg)"
    )


def require_torchcodec(device: str = "cpu") -> None:
    """Raises ValueError naming what is missing for decoding with torchcodec on ``device``."""
    problem = torchcodec_problem()
    if problem is not None:
        raise ValueError(f"data.reader=torchcodec: {problem}; or use data.reader=pyav")
    if device != "cpu":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("data.reader=torchcodec-cuda decodes on the GPU, but no CUDA device is visible; use data.reader=torchcodec")


def check_backend_name(backend: str) -> None:
    """Only the name, without importing anything (for settings checks)."""
    if backend not in BACKENDS:
        raise ValueError(f"data.reader must be one of {', '.join(BACKENDS)}, got {backend!r}")


def resolve_backend(backend: str) -> str:
    """'auto' -> 'decord' where it is installed, else 'pyav'; the others checked for
    being usable here."""
    check_backend_name(backend)
    if backend == "auto":
        return "decord" if decord_available() else "pyav"
    if backend == "decord" and not decord_available():
        raise ValueError("data.reader=decord but decord is not installed on this platform; use data.reader=pyav")
    if backend.startswith("torchcodec"):
        require_torchcodec("cuda" if backend == "torchcodec-cuda" else "cpu")
    return backend


def open_video(path: str, backend: str = "auto", short_side: int | None = None) -> AutoVideo | DecordVideo | PyAVVideo | TorchCodecVideo:
    """Opens ``path`` with the given backend: 'decord', 'pyav', 'torchcodec' (on the
    CPU), 'torchcodec-cuda' (on the GPU), or 'auto' (decord with PyAV as the fallback
    where decord is installed, else PyAV). ``short_side``: decode frames scaled down
    to this short side (see the module's notes)."""
    if short_side is not None and short_side < 1:
        raise ValueError(f"short_side must be at least 1, got {short_side}")
    resolved = resolve_backend(backend)
    if resolved == "decord":
        return AutoVideo(path, short_side) if backend == "auto" else DecordVideo(path, short_side=short_side)
    if resolved.startswith("torchcodec"):
        return TorchCodecVideo(path, short_side, device="cuda" if resolved == "torchcodec-cuda" else "cpu")
    return PyAVVideo(path, short_side)


def read_frames(path: str, indices: Sequence[int], backend: str = "auto", short_side: int | None = None) -> np.ndarray:
    """Opens, reads ``indices`` (uint8 [T, H, W, 3]) and closes."""
    with open_video(path, backend, short_side) as video:
        return video.get_frames(indices)


__all__ = [
    "BACKENDS",
    "AutoVideo",
    "DecordVideo",
    "PyAVVideo",
    "TorchCodecVideo",
    "VideoInfo",
    "VideoReadError",
    "check_backend_name",
    "decord_available",
    "open_video",
    "read_frames",
    "require_torchcodec",
    "resolve_backend",
    "scaled_size",
    "torchcodec_problem",
]
