"""The model workloads side by side: the pretraining step, the forward-only embedding and
the fine-tuning step, ours and (when installed) transformers' VideoMAE on the same
architecture.

Every timing warms up first, synchronises the device around each repeat and reports the
median; ours and transformers' runs of a workload are timed in turns, one call of each per
round, so that a drift in the machine's speed slows both alike. FLOPs are counted once per
workload with PyTorch's ``FlopCounterMode`` (matrix products and attention), so achieved
TFLOP/s and the fraction of a measured matmul peak mean the same thing on every device.
Memory is measured in a pass of its own: the CPU measure samples from a thread, which must
not run beside the timed repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..convert.hf import ours_to_hf
from ..engine.device import autocast
from ..engine.optim import fused_adamw_default
from ..masking import Mask, RunningCellMasking
from ..models.build import build_classifier, build_mae
from ..models.mae import MaskedAutoencoder
from .timing import PeakMemory, count_flops, interleaved_medians, matmul_peak_tflops


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


@dataclass
class _Workload:
    """A workload ready to time: what to call, on which module in which mode, and what
    its first calls measured (FLOPs, memory)."""

    name: str
    impl: str
    module: nn.Module
    training: bool
    run: Callable[[], object]
    flops: int
    memory_gib: float | None


def bench_model_config(preset: dict, frames: int, image: int, tubelet: int) -> dict:
    """A model preset (plain, e.g. ``tasks.presets.model_preset("vit_s", ...)``) set to clips of
    ``frames`` x ``image`` pixels cut into tubelets of ``tubelet`` frames."""
    return {**preset, "encoder": {**preset["encoder"], "img_size": image, "num_frames": frames, "tubelet_size": tubelet}}


def build_ours(model: dict, mask_ratio: float) -> MaskedAutoencoder:
    """Our MAE for a plain model config, with tube masking at ``mask_ratio``."""
    return build_mae(model, {"_target_": "video_mae.masking.TubeMasking", "ratio": mask_ratio})


def build_transformers(ours: MaskedAutoencoder, model: dict) -> nn.Module | None:
    """transformers' VideoMAEForPreTraining with the architecture of ``model`` (our plain
    model config; SDPA attention), or None when transformers is not installed."""
    try:
        import transformers  # optional: the [interop] extra
    except ImportError:
        return None
    config, state = ours_to_hf({"model": ours.state_dict(), "config": {"model": model}})
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
    model: dict,
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
    all tokens, and the fine-tuning step, for ours and transformers, on the architecture
    and clip shape of ``model`` (a plain model config, see :func:`bench_model_config`);
    returns the timings and the measured matmul peak (TFLOP/s; the higher of a measurement
    before and one after the workloads). With ``decoder_mask_ratio`` > 0, also our
    pretraining step with running-cell decoder masking (VideoMAE V2); ``finetune=False``
    leaves out the fine-tuning step."""
    device = torch.device(device)
    torch.manual_seed(0)
    peak = matmul_peak_tflops(device, precision)
    ours = build_ours(model, mask_ratio).to(device)
    frames, image = ours.encoder.patch_embed.num_frames, ours.encoder.patch_embed.img_size
    video = torch.randn(batch, 3, frames, image, image, device=device)
    grid = ours.encoder.grid
    mask: Mask = ours.masking(batch, grid, device=device, generator=torch.Generator(device=device).manual_seed(0))
    fused = fused_adamw_default(device)  # both implementations step with the same AdamW

    def step_fn(model: nn.Module, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=fused)

        def step() -> None:
            with autocast(device, precision):
                loss = loss_of()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def measure(
        name: str, impl: str, module: nn.Module, training: bool, run: Callable[[], object], flop_fn: Callable[[], object]
    ) -> _Workload:
        # Memory over the first calls (later ones reuse what they allocated: AdamW's state
        # comes with the first step); the timing comes later, with no sampler thread beside it.
        module.train(training)
        with PeakMemory(device) as memory:
            flops = count_flops(flop_fn)
            run()
        return _Workload(name, impl, module, training, run, flops, memory.gib)

    def timed(group: list[_Workload]) -> list[tuple[_Workload, float]]:
        """The same workload of each implementation, timed in turns: (workload, seconds)."""
        for workload in group:
            workload.module.train(workload.training)  # the modules of a group are distinct
        seconds = interleaved_medians([w.run for w in group], device, warmup, repeats)
        return list(zip(group, seconds, strict=True))

    runner = torch.compile(ours) if compile_model else ours
    impl = "ours (compiled)" if compile_model else "ours"
    step = measure(
        "pretrain step", impl, ours, True,
        step_fn(ours, lambda: runner(video, mask=mask).loss), lambda: ours(video, mask=mask).loss.backward(),
    )  # fmt: skip
    ours.zero_grad(set_to_none=True)
    decoder_masked: list[tuple[_Workload, float]] = []
    if decoder_mask_ratio > 0:  # ours only, so timed at once: the plain step needs the masking off
        ours.decoder_masking = RunningCellMasking(decoder_mask_ratio)
        decoder_masked = timed([measure(
            f"pretrain step, decoder mask {decoder_mask_ratio:g}", impl, ours, True,
            step_fn(ours, lambda: runner(video, mask=mask).loss), lambda: ours(video, mask=mask).loss.backward(),
        )])  # fmt: skip
        ours.decoder_masking = None
        ours.zero_grad(set_to_none=True)
    encoder = ours.encoder
    encode = torch.compile(encoder) if compile_model else encoder

    @torch.no_grad()
    def embed() -> torch.Tensor:
        with autocast(device, precision):
            return encode(video).mean(dim=1)

    embedding = measure("embedding forward", impl, ours, False, embed, embed)
    finetuned: list[tuple[_Workload, float]] = []
    if finetune:  # ours only: timed at once and freed before transformers' model is built
        classifier = build_classifier(model["encoder"], num_classes, {"mean_pooling": True}).to(device)
        classifier_run = torch.compile(classifier) if compile_model else classifier
        labels = torch.randint(num_classes, (batch,), device=device)
        finetuned = timed([measure(
            "finetune step", impl, classifier, True,
            step_fn(classifier, lambda: F.cross_entropy(classifier_run(video).float(), labels)),
            lambda: F.cross_entropy(classifier(video).float(), labels).backward(),
        )])  # fmt: skip
        del classifier, classifier_run

    pairs = [[step], [embedding]]
    hf = build_transformers(ours, model) if with_transformers else None
    if hf is not None:
        hf = hf.to(device)
        pixels = video.permute(0, 2, 1, 3, 4).contiguous()
        pairs[0].append(measure(
            "pretrain step", "transformers (sdpa)", hf, True,
            step_fn(hf, lambda: hf(pixels, bool_masked_pos=mask.mask).loss),
            lambda: hf(pixels, bool_masked_pos=mask.mask).loss.backward(),
        ))  # fmt: skip
        hf.zero_grad(set_to_none=True)

        @torch.no_grad()
        def hf_embed() -> torch.Tensor:
            with autocast(device, precision):
                return hf.videomae(pixels).last_hidden_state.mean(dim=1)

        pairs[1].append(measure("embedding forward", "transformers (sdpa)", hf, False, hf_embed, hf_embed))
    (step_t, *hf_step_t), (embed_t, *hf_embed_t) = (timed(pair) for pair in pairs)
    # Measured again at the end, and the higher rate kept: on a shared CPU the rate at the
    # start alone read 0.10 to 0.18 TFLOP/s (fp32) between runs of the same command here.
    peak = max(peak, matmul_peak_tflops(device, precision))
    ordered = [step_t, *decoder_masked, embed_t, *finetuned, *hf_step_t, *hf_embed_t]
    return [_timing(w.name, w.impl, seconds, batch, w.flops, peak, w.memory_gib) for w, seconds in ordered], peak


def timings_table(results: list[Timing], peak: float) -> str:
    lines = [
        f"matmul peak measured: {peak:.2f} TFLOP/s",
        "| workload | implementation | clips/s | GFLOP/clip | TFLOP/s | of peak | peak mem GiB | vs transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = {r.name: r.clips_per_s for r in results if r.implementation.startswith("transformers")}
    for r in results:
        ratio = (
            f"{r.clips_per_s / reference[r.name]:.2f}x" if r.name in reference and not r.implementation.startswith("transformers") else ""
        )
        fraction = f"{100 * r.peak_fraction:.1f}%" if r.peak_fraction is not None else ""
        memory = f"{r.peak_memory_gib:.2f}" if r.peak_memory_gib is not None else ""
        lines.append(
            f"| {r.name} | {r.implementation} | {r.clips_per_s:.1f} | {r.gflop_per_clip:.1f} | {r.tflops:.3f} | {fraction} | {memory} | {ratio} |"
        )
    return "\n".join(lines)


def timings_json(results: list[Timing], peak: float, settings: dict) -> dict:
    return {"settings": settings, "matmul_peak_tflops": peak, "results": [asdict(r) for r in results]}
