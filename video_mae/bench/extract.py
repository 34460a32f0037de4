"""End-to-end embedding extraction, ours against what a user would otherwise write.

Ours: the ``vmae-extract`` path (evaluation loader: decode, resize, crop; forward in the
chosen precision; pooled, L2-normalised vectors). Theirs: transformers' ``VideoMAEModel``
loaded from our exported weights, its own processor for resizing, cropping and
normalising, and a PyAV loop that decodes the same frames. Both see the same videos, the
same clip (the centre one), the same model and precision. Each side is also timed in parts
(decoding and preparing clips alone, the forward alone on prepared clips), so that the
report says where the time goes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..convert.hf import write_hf_dir
from ..data.lists import VideoRecord
from ..data.loader import evaluation_loader
from ..data.settings import DataSettings
from ..data.transforms import ClipNormalizer, EvalClipTransform
from ..engine.device import autocast
from ..engine.embed import extract_embeddings
from ..models.mae import MaskedAutoencoder


@dataclass(frozen=True)
class ExtractTiming:
    """Seconds for ``videos`` videos: end to end, decoding and preparing alone, forward alone."""

    implementation: str
    videos: int
    total_s: float
    decode_s: float
    forward_s: float

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.total_s if self.total_s > 0 else 0.0


def _centre_indices(data: DataSettings, num_frames_in_video: int) -> list[int]:
    return [int(i) for i in data.sampler().uniform_clips(num_frames_in_video, 1)[0]]


def _warm_up(fn: Callable[[torch.Tensor], object], data: DataSettings, device: torch.device, precision: str, channels_first: bool) -> None:
    """One forward before the clock starts: first-call allocations and thread start-up
    are not what a long extraction pays per video."""
    shape = (
        (1, 3, data.num_frames, data.crop_size, data.crop_size)
        if channels_first
        else (1, data.num_frames, 3, data.crop_size, data.crop_size)
    )
    with torch.no_grad(), autocast(device, precision):
        fn(torch.zeros(shape, device=device))


def time_ours(
    model: MaskedAutoencoder, records: Sequence[VideoRecord], data: DataSettings, device: torch.device, precision: str, batch: int
) -> tuple[ExtractTiming, torch.Tensor]:
    transform = EvalClipTransform(data.crop_size, data.mean, data.std, normalize=False)
    normalizer = ClipNormalizer(data.mean, data.std)
    model.eval().to(device)
    _warm_up(lambda x: model.encoder.forward_features(x), data, device, precision, channels_first=True)

    start = time.perf_counter()
    loader = evaluation_loader(list(records), data, transform, 1, batch, False)
    result = extract_embeddings(model, loader, device, precision, batch, normalizer)
    total = time.perf_counter() - start

    start = time.perf_counter()
    clips = [b["video"] for b in evaluation_loader(list(records), data, transform, 1, batch, False)]
    decode = time.perf_counter() - start
    encoder = model.encoder
    start = time.perf_counter()
    with torch.no_grad():
        for chunk in clips:
            with autocast(device, precision):
                encoder.forward_features(normalizer(chunk.flatten(0, 1).to(device))).mean(dim=1)
    forward = time.perf_counter() - start
    return ExtractTiming("ours", len(records), total, decode, forward), result.videos


def export_for_transformers(model: MaskedAutoencoder, config: dict, folder: Path) -> Path:
    return write_hf_dir({"model": model.state_dict(), "config": config}, folder)


def time_transformers(
    folder: Path, records: Sequence[VideoRecord], data: DataSettings, device: torch.device, precision: str
) -> tuple[ExtractTiming, torch.Tensor]:
    """transformers' VideoMAEModel and processor, frames decoded with PyAV (the loop its
    documentation shows), one video at a time."""
    import transformers  # optional: the [interop] extra

    # The export holds the pretraining decoder too; VideoMAEModel's loading report would list
    # every decoder weight as unexpected, which is expected here.
    transformers.logging.set_verbosity_error()
    model = transformers.VideoMAEModel.from_pretrained(folder).eval().to(device)
    processor = transformers.VideoMAEImageProcessor.from_pretrained(folder)

    def decode(path: str) -> list[np.ndarray]:
        with av.open(path) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        wanted = _centre_indices(data, len(frames))
        return [frames[i] for i in wanted]

    def forward(pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), autocast(device, precision):
            return model(pixel_values=pixels.to(device)).last_hidden_state.mean(dim=1).float()

    _warm_up(lambda x: model(pixel_values=x), data, device, precision, channels_first=False)
    vectors = []
    start = time.perf_counter()
    for record in records:
        inputs = processor(decode(record.path), return_tensors="pt")
        vectors.append(F.normalize(forward(inputs["pixel_values"]), dim=-1))
    total = time.perf_counter() - start

    start = time.perf_counter()
    prepared = [processor(decode(r.path), return_tensors="pt")["pixel_values"] for r in records]
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    for pixels in prepared:
        forward(pixels)
    forward_s = time.perf_counter() - start
    return ExtractTiming("transformers", len(records), total, decode_s, forward_s), torch.cat(vectors)


def _median_round(rounds: Sequence[ExtractTiming]) -> ExtractTiming:
    """The median of each measure over the rounds (one side's)."""
    return ExtractTiming(
        rounds[0].implementation,
        rounds[0].videos,
        statistics.median(t.total_s for t in rounds),
        statistics.median(t.decode_s for t in rounds),
        statistics.median(t.forward_s for t in rounds),
    )


def bench_extract(
    model: MaskedAutoencoder,
    config: dict,
    records: Sequence[VideoRecord],
    data: DataSettings,
    device: torch.device,
    precision: str,
    batch: int = 8,
    with_transformers: bool = True,
    rounds: int = 1,
) -> tuple[list[ExtractTiming], float | None]:
    """Timings of both sides and the largest difference between their embeddings (cosine
    distance), which shows that they computed the same thing (None without transformers).
    With ``rounds`` > 1 the two sides take turns, ours then theirs, and each measure is the
    median over the rounds: on a shared CPU, one side alone ran 1.5x slower in one run than
    in the next."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_for_transformers(model, config, Path(tmp) / "hf") if with_transformers else None
        ours_rounds, their_rounds = [], []
        for _ in range(rounds):
            timing, our_vectors = time_ours(model, records, data, device, precision, batch)
            ours_rounds.append(timing)
            if folder is not None:
                timing, their_vectors = time_transformers(folder, records, data, device, precision)
                their_rounds.append(timing)
    timings = [_median_round(ours_rounds)]
    if not their_rounds:
        return timings, None
    gap = float((1 - (our_vectors * their_vectors).sum(dim=1)).abs().max())
    return [*timings, _median_round(their_rounds)], gap


def extract_table(timings: Sequence[ExtractTiming]) -> str:
    ours = timings[0]
    lines = [
        "| implementation | videos/s | end to end s | decode + prepare s | forward s | vs ours |",
        "|---|---|---|---|---|---|",
    ]
    for t in timings:
        ratio = t.total_s / ours.total_s if ours.total_s > 0 else 0.0
        lines.append(f"| {t.implementation} | {t.videos_per_s:.2f} | {t.total_s:.2f} | {t.decode_s:.2f} | {t.forward_s:.2f} | "
                     f"{'' if t is ours else f'ours is {ratio:.2f}x faster'} |")  # fmt: skip
    return "\n".join(lines)
