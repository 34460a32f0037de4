"""Measuring speed: the pretraining step, forward-only embedding, the fine-tuning step
and the loader, ours and (when installed) transformers' VideoMAE side by side.

Every model timing warms up first, synchronises the device around each repeat and
reports the median. FLOPs are counted once per workload with PyTorch's
``FlopCounterMode`` (matrix products and attention), so achieved TFLOP/s and the
fraction of a measured matmul peak mean the same thing on every device.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .engine.device import autocast
from .masking import Mask, RunningCellMasking, TubeMasking
from .models.classifier import VideoClassifier
from .models.mae import MaskedAutoencoder
from .models.vit import VisionTransformer3D


@dataclass(frozen=True)
class ModelSize:
    embed_dim: int
    depth: int
    num_heads: int
    decoder_dim: int
    decoder_depth: int
    decoder_num_heads: int
    patch_size: int = 16
    mlp_ratio: float = 4.0


@dataclass
class Timing:
    """One workload: median seconds per call over ``repeats``, clips/s, FLOPs per clip,
    achieved TFLOP/s, fraction of the measured matmul peak, and peak memory (CUDA: the
    allocator's peak; CPU: resident memory the workload added, see :class:`PeakMemory`)."""

    name: str
    implementation: str
    seconds: float
    clips_per_s: float
    gflop_per_clip: float
    tflops: float
    peak_fraction: float | None
    peak_memory_gib: float | None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_peak_tflops(device: torch.device, precision: str, size: int | None = None, repeats: int = 10) -> float:
    """Measured dense matmul rate in the run's number format (the denominator of
    the peak fraction): square products of ``size`` (4096 on a GPU, 1024 on the CPU)."""
    size = size or (8192 if device.type == "cuda" else 1024)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: a @ b, device, warmup=3, repeats=repeats)
    return 2 * size**3 / seconds / 1e12


def _release_free_heap() -> None:
    """Hands the C heap's free pages back to the OS (glibc's ``malloc_trim``), so that
    resident memory measures what a workload allocates, not what an earlier one freed
    and the heap kept (after a free, glibc serves even large blocks from its heap)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of what runs inside the ``with`` block, in GiB: on CUDA the allocator's
    peak; on the CPU the highest resident memory of this process, sampled every 2 ms
    by a thread (torch releases the GIL in its kernels), less the resident memory at
    the start, after the heap's free pages went back to the OS: the memory the
    workload adds."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.gib: float | None = None
        self._stop = threading.Event()
        self._peak = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, resident_mib())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _release_free_heap()
            self._start = self._peak = resident_mib()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.gib = torch.cuda.max_memory_allocated(self.device) / 2**30
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, resident_mib())
            self.gib = (self._peak - self._start) / 1024


def build_encoder(size: ModelSize, frames: int, image: int, tubelet: int, final_norm: bool = True) -> VisionTransformer3D:
    return VisionTransformer3D(
        img_size=image, patch_size=size.patch_size, num_frames=frames, tubelet_size=tubelet, embed_dim=size.embed_dim,
        depth=size.depth, num_heads=size.num_heads, mlp_ratio=size.mlp_ratio, final_norm=final_norm,
    )  # fmt: skip


def build_ours(size: ModelSize, frames: int, image: int, tubelet: int, mask_ratio: float) -> MaskedAutoencoder:
    encoder = build_encoder(size, frames, image, tubelet)
    return MaskedAutoencoder(
        encoder, TubeMasking(mask_ratio), decoder_dim=size.decoder_dim, decoder_depth=size.decoder_depth,
        decoder_num_heads=size.decoder_num_heads,
    )  # fmt: skip


def build_transformers(ours: MaskedAutoencoder, size: ModelSize) -> nn.Module | None:
    """transformers' VideoMAEForPreTraining with our architecture (SDPA attention), or None
    when transformers is not installed."""
    try:
        import transformers
    except ImportError:
        return None
    from .convert.hf import ours_to_hf

    enc = ours.encoder
    checkpoint = {
        "model": ours.state_dict(),
        "config": {
            "model": {
                "encoder": {
                    "img_size": enc.patch_embed.img_size, "patch_size": enc.patch_size, "num_frames": enc.patch_embed.num_frames,
                    "tubelet_size": enc.tubelet_size, "embed_dim": enc.embed_dim, "depth": len(enc.blocks),
                    "num_heads": size.num_heads, "mlp_ratio": size.mlp_ratio, "norm_eps": enc.norm_eps,
                },
                "decoder_dim": size.decoder_dim, "decoder_depth": size.decoder_depth, "decoder_num_heads": size.decoder_num_heads,
            }
        },
    }  # fmt: skip
    config, state = ours_to_hf(checkpoint)
    config.pop("model_type")
    config.pop("architectures")
    del state  # the same architecture is what matters for timing, not the same weights
    return transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**config, attn_implementation="sdpa"))


def _timing(name: str, impl: str, seconds: float, clips: int, flops: int, peak: float | None, memory: float | None) -> Timing:
    tflops = flops / seconds / 1e12
    return Timing(
        name=name,
        implementation=impl,
        seconds=seconds,
        clips_per_s=clips / seconds,
        gflop_per_clip=flops / clips / 1e9,
        tflops=tflops,
        peak_fraction=tflops / peak if peak else None,
        peak_memory_gib=memory,
    )


def bench_models(
    size: ModelSize,
    frames: int = 16,
    image: int = 224,
    tubelet: int = 2,
    batch: int = 32,
    mask_ratio: float = 0.9,
    precision: str = "bf16",
    device: torch.device | str = "cuda",
    warmup: int = 3,
    repeats: int = 10,
    compile_model: bool = False,
    with_transformers: bool = True,
    num_classes: int = 400,
    decoder_mask_ratio: float = 0.0,
    finetune: bool = True,
) -> tuple[list[Timing], float]:
    """Times the pretraining step (forward, backward, AdamW), forward-only embedding of
    all tokens, and the fine-tuning step, for ours and transformers; returns the
    timings and the measured matmul peak (TFLOP/s). With ``decoder_mask_ratio`` > 0,
    also our pretraining step with running-cell decoder masking (VideoMAE V2);
    ``finetune=False`` leaves out the fine-tuning step."""
    device = torch.device(device)
    torch.manual_seed(0)
    peak = matmul_peak_tflops(device, precision)
    ours = build_ours(size, frames, image, tubelet, mask_ratio).to(device)
    video = torch.randn(batch, 3, frames, image, image, device=device)
    grid = ours.encoder.grid
    mask: Mask = ours.masking(batch, grid, device=device, generator=torch.Generator(device=device).manual_seed(0))
    fused = device.type == "cuda"
    results: list[Timing] = []

    def step_fn(model: nn.Module, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=fused)

        def step() -> None:
            with autocast(device, precision):
                loss = loss_of()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def measure(name: str, impl: str, fn: Callable[[], object], flop_fn: Callable[[], object]) -> None:
        with PeakMemory(device) as memory:  # from the first call on: later calls reuse what it allocated
            flops = count_flops(flop_fn)
            seconds = median_seconds(fn, device, warmup, repeats)
        results.append(_timing(name, impl, seconds, batch, flops, peak, memory.gib))

    runner = torch.compile(ours) if compile_model else ours
    impl = "ours (compiled)" if compile_model else "ours"
    ours.train()
    measure("pretrain step", impl, step_fn(ours, lambda: runner(video, mask=mask).loss), lambda: ours(video, mask=mask).loss.backward())
    ours.zero_grad(set_to_none=True)
    if decoder_mask_ratio > 0:
        ours.decoder_masking = RunningCellMasking(decoder_mask_ratio)
        measure(
            f"pretrain step, decoder mask {decoder_mask_ratio:g}", impl,
            step_fn(ours, lambda: runner(video, mask=mask).loss), lambda: ours(video, mask=mask).loss.backward(),
        )  # fmt: skip
        ours.decoder_masking = None
        ours.zero_grad(set_to_none=True)
    encoder = ours.encoder
    encode = torch.compile(encoder) if compile_model else encoder

    @torch.no_grad()
    def embed() -> torch.Tensor:
        with autocast(device, precision):
            return encode(video).mean(dim=1)

    ours.eval()
    measure("embedding forward", impl, embed, embed)
    if finetune:
        classifier = VideoClassifier(build_encoder(size, frames, image, tubelet, final_norm=False), num_classes).to(device)
        classifier_run = torch.compile(classifier) if compile_model else classifier
        labels = torch.randint(num_classes, (batch,), device=device)
        classifier.train()
        measure(
            "finetune step", impl,
            step_fn(classifier, lambda: F.cross_entropy(classifier_run(video).float(), labels)),
            lambda: F.cross_entropy(classifier(video).float(), labels).backward(),
        )  # fmt: skip
        del classifier, classifier_run

    hf = build_transformers(ours, size) if with_transformers else None
    if hf is not None:
        hf = hf.to(device)
        pixels = video.permute(0, 2, 1, 3, 4).contiguous()
        hf.train()
        measure(
            "pretrain step", "transformers (sdpa)",
            step_fn(hf, lambda: hf(pixels, bool_masked_pos=mask.mask).loss),
            lambda: hf(pixels, bool_masked_pos=mask.mask).loss.backward(),
        )  # fmt: skip
        hf.zero_grad(set_to_none=True)
        hf.eval()

        @torch.no_grad()
        def hf_embed() -> torch.Tensor:
            with autocast(device, precision):
                return hf.videomae(pixels).last_hidden_state.mean(dim=1)

        measure("embedding forward", "transformers (sdpa)", hf_embed, hf_embed)
    return results, peak


def timings_table(results: list[Timing], peak: float) -> str:
    lines = [
        f"matmul peak measured: {peak:.2f} TFLOP/s",
        "| workload | implementation | clips/s | GFLOP/clip | TFLOP/s | of peak | peak mem GiB | vs transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = {r.name: r.clips_per_s for r in results if r.implementation.startswith("transformers")}
    for r in results:
        ratio = f"{r.clips_per_s / reference[r.name]:.2f}x" if r.name in reference and not r.implementation.startswith("transformers") else ""
        fraction = f"{100 * r.peak_fraction:.1f}%" if r.peak_fraction is not None else ""
        memory = f"{r.peak_memory_gib:.2f}" if r.peak_memory_gib is not None else ""
        lines.append(
            f"| {r.name} | {r.implementation} | {r.clips_per_s:.1f} | {r.gflop_per_clip:.1f} | {r.tflops:.3f} | {fraction} | {memory} | {ratio} |"
        )
    return "\n".join(lines)


def timings_json(results: list[Timing], peak: float, settings: dict) -> dict:
    return {"settings": settings, "matmul_peak_tflops": peak, "results": [asdict(r) for r in results]}


@dataclass
class LoaderTiming:
    clips_per_video: int
    workers: int
    videos: int
    clips: int
    seconds: float
    clips_per_s: float
    clips_per_s_per_worker: float


def bench_loader(
    records: list,
    data,
    augment,
    workers: int,
    batch_size: int = 4,
    batches: int = 10,
) -> LoaderTiming:
    """Clips per second the training dataset that ``data`` describes delivers from
    ``records`` (decode, sample, augment, collate; ``data.clips_per_video`` clips per
    decode), after one warm-up batch. With no workers the main process does the work
    and counts as one worker."""
    from .data.loader import EpochSampler, make_loader, training_dataset

    clips_per_video = data.clips_per_video
    dataset = training_dataset(records, data, augment)
    needed = (batches + 1) * batch_size
    order = EpochSampler(len(dataset), seed=0, epoch=0)
    loader = make_loader(dataset, order, batch_size, workers, timeout_s=600 if workers else 0)
    if len(dataset) < needed:
        raise ValueError(f"the list has {len(dataset)} videos; {needed} are needed for {batches} timed batches of {batch_size}")
    threads = torch.get_num_threads()
    if workers == 0:
        torch.set_num_threads(1)  # one core, as each worker process has
    try:
        iterator = iter(loader)
        next(iterator)  # warm-up: worker start, first opens
        start = time.perf_counter()
        clips = 0
        for _ in range(batches):
            clips += next(iterator)["video"].shape[0] * clips_per_video
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    rate = clips / seconds
    return LoaderTiming(clips_per_video, workers, batches * batch_size, clips, seconds, rate, rate / max(workers, 1))


def resident_mib() -> float:
    """This process's resident memory now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class ReaderMemory:
    backend: str
    decodes: int
    seconds: float
    rss_start_mib: float
    rss_end_mib: float
    rss_max_mib: float
    samples: list[tuple[int, float]]


def bench_reader_memory(paths: list[str], backend: str, decodes: int, num_frames: int = 16, sampling_rate: int = 4,
                        every: int = 1000) -> ReaderMemory:  # fmt: skip
    """Opens, decodes one random clip and closes, ``decodes`` times over ``paths``,
    sampling this process's resident memory every ``every`` decodes (after 100
    warm-up decodes, which fill allocator pools)."""
    import numpy as np

    from .data.readers import open_video
    from .data.sampling import ClipSampler

    sampler = ClipSampler(num_frames, sampling_rate)
    rng = np.random.default_rng(0)

    def one(i: int) -> None:
        with open_video(paths[i % len(paths)], backend) as video:
            clip = sampler.random_clips(video.info.num_frames, 1, rng)[0]
            video.get_frames(clip.tolist())

    for i in range(100):
        one(i)
    start_rss = resident_mib()
    samples = [(0, start_rss)]
    start = time.perf_counter()
    for i in range(decodes):
        one(i)
        if (i + 1) % every == 0:
            samples.append((i + 1, resident_mib()))
    seconds = time.perf_counter() - start
    if samples[-1][0] != decodes:  # the end is always measured, not only every `every` decodes
        samples.append((decodes, resident_mib()))
    return ReaderMemory(backend, decodes, seconds, start_rss, samples[-1][1], max(r for _, r in samples), samples)
