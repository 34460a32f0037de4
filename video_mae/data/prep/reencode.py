"""Re-encoding videos into training-friendly files: small, H.264, frequent key frames.

Decoding a clip costs roughly the pixels of every frame from the key frame before
it to its last frame, so smaller frames and a key frame every 16-32 frames make
random access cheap. Audio is dropped. The frame rate and frame count are kept,
so frame indices (and data lists) stay valid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class ReencodeTask:
    source: str
    target: str
    short_side: int = 256
    keyframe_interval: int = 16
    crf: int = 23


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def reencode_video(task: ReencodeTask) -> str:
    """Writes ``task.target`` (via a temporary file, so a killed run leaves no half
    file behind); returns "" on success or the reason it failed."""
    import av

    target = Path(task.target)
    if target.is_file():
        return ""  # done in an earlier run
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(task.source) as source:
            if not source.streams.video:
                return "no video stream"
            stream = source.streams.video[0]
            stream.thread_type = "AUTO"
            width, height = stream.codec_context.width, stream.codec_context.height
            if not width or not height:
                return "unknown frame size"
            scale = min(1.0, task.short_side / min(width, height))
            out_w, out_h = _even(width * scale), _even(height * scale)
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            with av.open(str(tmp), mode="w") as out:
                encoder = out.add_stream("libx264", rate=rate)
                encoder.width, encoder.height, encoder.pix_fmt = out_w, out_h, "yuv420p"
                encoder.options = {"crf": str(task.crf), "g": str(task.keyframe_interval), "preset": "veryfast"}
                count = 0
                for frame in source.decode(stream):
                    image = frame.reformat(width=out_w, height=out_h, format="yuv420p")
                    image.pts = count
                    image.time_base = Fraction(1, 1) / rate
                    for packet in encoder.encode(image):
                        out.mux(packet)
                    count += 1
                for packet in encoder.encode():
                    out.mux(packet)
            if count == 0:
                return "no frames"
        os.replace(tmp, target)
        return ""
    except Exception as err:  # one bad source must not stop the collection
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        tmp.unlink(missing_ok=True)


def target_path(source: str, source_root: Path, target_root: Path) -> Path:
    """The output file for ``source``: same path below ``target_root`` as below
    ``source_root`` (suffix .mp4); sources outside ``source_root`` are an error."""
    relative = Path(source).resolve().relative_to(source_root.resolve())
    return (target_root / relative).with_suffix(".mp4")
