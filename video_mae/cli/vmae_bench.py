"""vmae-bench: pretraining, embedding and fine-tuning steps side by side with transformers, and the loader."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.readers import BACKENDS as READERS

if TYPE_CHECKING:  # torch is imported once a benchmark runs, not for --help
    import torch


def _preset(name: str) -> dict:
    from ..tasks.presets import model_preset

    return model_preset(name, f"--model {name}")


def _run_settings(args: argparse.Namespace, precision: str, device: torch.device, leave_out: tuple[str, ...]) -> dict:
    """What a benchmark's JSON records of how it ran: the arguments, the resolved precision and the device."""
    return {**{k: v for k, v in vars(args).items() if k not in leave_out}, "precision": precision,
            "device": str(device), "device_name": torch_device_name(device)}  # fmt: skip


def bench(argv: list[str] | None = None) -> int:
    """vmae-bench: speed of the model workloads and of the loader."""
    parser = argparse.ArgumentParser(prog="vmae-bench", description="Time pretraining, embedding, fine-tuning and the loader.")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="pretraining step, embedding forward and fine-tuning step, ours vs transformers")
    models.add_argument("--model", default="vit_b", help="preset: vit_tiny, vit_s, vit_b, vit_l, vit_h, vit_g (default vit_b)")
    models.add_argument("--frames", type=int, default=16)
    models.add_argument("--size", type=int, default=224)
    models.add_argument("--tubelet", type=int, default=2)
    models.add_argument("--batch", type=int, default=32)
    models.add_argument("--mask-ratio", type=float, default=0.9)
    models.add_argument(
        "--decoder-mask-ratio",
        type=float,
        default=0.0,
        help="also time our pretraining step with running-cell decoder masking (VideoMAE V2: 0.5)",
    )
    models.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    models.add_argument("--device", default="auto")
    models.add_argument("--warmup", type=int, default=3)
    models.add_argument("--repeats", type=int, default=10)
    models.add_argument("--compile", action="store_true", help="torch.compile our models")
    models.add_argument("--no-transformers", action="store_true", help="skip the transformers side")
    models.add_argument("--json", type=Path, help="also write the results as JSON")
    cost = commands.add_parser("cost", help="time and memory per clip over frames x sizes, embedding forward and pretraining step")
    cost.add_argument("--model", default="vit_s", help="preset (default vit_s)")
    cost.add_argument("--frames", default="8,16,32", help="comma-separated (default 8,16,32)")
    cost.add_argument("--sizes", default="112,160,224", help="comma-separated (default 112,160,224)")
    cost.add_argument("--batch", type=int, default=1)
    cost.add_argument("--tubelet", type=int, default=2)
    cost.add_argument("--mask-ratio", type=float, default=0.9)
    cost.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    cost.add_argument("--device", default="auto")
    cost.add_argument("--warmup", type=int, default=1)
    cost.add_argument("--repeats", type=int, default=3)
    cost.add_argument("--no-transformers", action="store_true", help="skip the transformers side")
    cost.add_argument("--out", type=Path, default=Path("runs/cost"), help="output folder for cost.json, cost.md, cost.png")
    loader = commands.add_parser("loader", help="clips/s per worker of the training loader on a data list")
    loader.add_argument("--list", type=Path, help="data list (default: the demo training list)")
    loader.add_argument("--root", type=Path)
    loader.add_argument("--clips-per-video", default="1,4", help="comma-separated (default 1,4)")
    loader.add_argument("--workers", default="0", help="comma-separated worker counts (default 0)")
    loader.add_argument("--frames", type=int, default=16)
    loader.add_argument("--sampling-rate", type=int, default=4)
    loader.add_argument("--crop", type=int, default=224)
    loader.add_argument("--reader", default="auto", choices=list(READERS))
    loader.add_argument(
        "--decode-short-side", default="full", help="comma-separated: 'full' or a short side to decode at (e.g. full,256; default full)"
    )
    loader.add_argument("--batch", type=int, default=4)
    loader.add_argument("--batches", type=int, default=10)
    loader.add_argument("--json", type=Path)
    reader = commands.add_parser("reader", help="clips/s and resident memory over many open/decode/close cycles, per reader")
    reader.add_argument("--list", type=Path, help="data list (default: the demo training list)")
    reader.add_argument("--root", type=Path)
    reader.add_argument("--decodes", type=int, default=10000)
    reader.add_argument(
        "--readers",
        default="decord,pyav,torchcodec",
        help="comma-separated backends (default decord,pyav,torchcodec; those that cannot run here are skipped)",
    )
    reader.add_argument("--frames", type=int, default=16)
    reader.add_argument("--sampling-rate", type=int, default=4)
    reader.add_argument("--json", type=Path)
    extract = commands.add_parser(
        "extract", help="end-to-end embedding extraction (decode, prepare, forward), ours vs transformers' model and processor"
    )
    extract.add_argument("--checkpoint", type=Path, help="a vmae-pretrain checkpoint (default: a randomly initialised --model)")
    extract.add_argument("--model", default="vit_s", help="preset without --checkpoint (default vit_s)")
    extract.add_argument("--list", type=Path, help="data list (default: the demo's validation list)")
    extract.add_argument("--root", type=Path)
    extract.add_argument("--videos", type=int, default=32, help="videos to embed (the list repeated as needed; default 32)")
    extract.add_argument("--frames", type=int, default=16)
    extract.add_argument("--size", type=int, default=224)
    extract.add_argument("--sampling-rate", type=int, default=4)
    extract.add_argument("--batch", type=int, default=8)
    extract.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    extract.add_argument("--device", default="auto")
    extract.add_argument("--workers", type=int, default=0, help="our loader's worker processes (decoding beside the forward; default 0)")
    extract.add_argument(
        "--decode-short-side",
        type=int,
        default=None,
        help="our side decodes frames with a short side >= 1.5x this scaled down to it (e.g. the --size)",
    )
    extract.add_argument("--no-transformers", action="store_true", help="time our side only")
    extract.add_argument(
        "--rounds", type=int, default=1, help="the two sides take turns this many times; each measure is the median (default 1)"
    )
    extract.add_argument("--json", type=Path)
    learning = commands.add_parser(
        "learning", help="does pretraining pay off: fine-tuning and probes with few labels, pretrained vs random init (demo data)"
    )
    learning.add_argument("--out", type=Path, default=Path("runs/learning"), help="output folder (default runs/learning)")
    learning.add_argument("--world", default="shapes", choices=["shapes", "textured"], help="demo world (default shapes)")
    learning.add_argument("--labels-per-class", default="5,10,20", help="comma-separated label budgets (default 5,10,20)")
    learning.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    learning.add_argument("--methods", default="finetune,linear,attentive", help="comma-separated (default: all three)")
    learning.add_argument("--pretrain-epochs", type=int, default=12, help="pretraining epochs (default 12: 3,000 steps)")
    learning.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override for every run (repeatable), e.g. data.demo.cache_dir=/tmp/demo",
    )
    args = parser.parse_args(argv)

    if args.command == "learning":
        return _learning(args)
    if args.command == "extract":
        return _extract(args)

    from dataclasses import asdict, replace

    from ..engine.device import resolve_device, resolve_precision

    if args.command == "cost":
        from ..bench.cost import bench_cost, cost_table, write_cost

        try:
            preset = _preset(args.model)
            embed_dim = preset["encoder"]["embed_dim"]
            device = resolve_device(args.device)
            frames = [int(v) for v in args.frames.split(",")]
            sizes = [int(v) for v in args.sizes.split(",")]
        except ValueError as err:
            print(f"vmae-bench: error: {err}", file=sys.stderr)
            return 2
        precision = resolve_precision(args.precision, device, embed_dim)
        points = bench_cost(
            preset, frames, sizes, args.batch, precision, device, args.tubelet, args.mask_ratio, args.warmup, args.repeats,
            not args.no_transformers,
        )  # fmt: skip
        title = f"{torch_device_name(device)}, {args.model}, batch {args.batch}, mask {args.mask_ratio}, {precision}"
        settings = _run_settings(args, precision, device, ("out", "command"))
        write_cost(points, args.out, settings, title)
        print(title)
        print(cost_table(points))
        print(f"wrote {args.out / 'cost.md'}, {args.out / 'cost.png'}")
        return 0
    if args.command == "models":
        from ..bench.models import bench_model_config, bench_models, timings_json, timings_table

        try:
            model = bench_model_config(_preset(args.model), args.frames, args.size, args.tubelet)
            device = resolve_device(args.device)
        except ValueError as err:
            print(f"vmae-bench: error: {err}", file=sys.stderr)
            return 2
        precision = resolve_precision(args.precision, device, model["encoder"]["embed_dim"])
        results, peak = bench_models(
            model, args.batch, args.mask_ratio, precision, device,
            args.warmup, args.repeats, args.compile, not args.no_transformers, decoder_mask_ratio=args.decoder_mask_ratio,
        )  # fmt: skip
        settings = _run_settings(args, precision, device, ("json", "command"))
        print(f"{settings['device_name']}, {args.model}, {args.frames}x{args.size}x{args.size}, tubelet {args.tubelet}, "
              f"batch {args.batch}, mask {args.mask_ratio}, {precision}")  # fmt: skip
        print(timings_table(results, peak))
        if args.json:
            args.json.write_text(json.dumps(timings_json(results, peak, settings), indent=1, default=str) + "\n", encoding="utf-8")
        return 0

    from ..data.lists import read_data_list
    from ..data.settings import DataSettings

    if args.command == "reader":
        from ..bench.reader import bench_reader_memory
        from ..data.readers import resolve_backend

        data = DataSettings(name="bench", demo=None if args.list else _demo_spec(), train_list=str(args.list) if args.list else None)
        records = read_data_list(args.list, args.root) if args.list else data.records()[0]
        rows = []
        for backend in args.readers.split(","):
            try:
                resolve_backend(backend)
            except ValueError as err:
                print(f"{backend}: skipped ({err})")
                continue
            result = bench_reader_memory([r.path for r in records], backend, args.decodes, args.frames, args.sampling_rate)
            rows.append(asdict(result))
            print(f"{backend}: {result.decodes} clips of {args.frames} frames in {result.seconds:.1f} s "
                  f"({result.decodes / result.seconds:.1f} clips/s); resident memory {result.rss_start_mib:.1f} -> "
                  f"{result.rss_end_mib:.1f} MiB (max {result.rss_max_mib:.1f}, growth {result.rss_end_mib - result.rss_start_mib:+.1f} MiB)")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        return 0

    from ..bench.loader import bench_loader
    from ..data.transforms import MultiScaleCropTransform

    try:
        short_sides = [None if x.strip() == "full" else int(x) for x in args.decode_short_side.split(",")]
    except ValueError:
        print(f"vmae-bench: error: --decode-short-side takes 'full' or integers, got {args.decode_short_side!r}", file=sys.stderr)
        return 2
    settings = dict(
        name="bench", train_list=str(args.list) if args.list else None, root=str(args.root) if args.root else None,
        demo=None if args.list else _demo_spec(), num_frames=args.frames, sampling_rate=args.sampling_rate,
        crop_size=args.crop, reader=args.reader,
    )  # fmt: skip
    try:
        variants = [DataSettings(**settings, decode_short_side=short_side) for short_side in short_sides]
    except ValueError as err:
        print(f"vmae-bench: error: {err}", file=sys.stderr)
        return 2
    data = variants[0]
    records = read_data_list(args.list, data.root) if args.list else data.records()[0]
    augment = MultiScaleCropTransform(args.crop, data.mean, data.std, normalize=False)  # as pretraining: uint8 clips
    rows = []
    for data in variants:
        short_side = data.decode_short_side
        for k in [int(x) for x in args.clips_per_video.split(",")]:
            for workers in [int(x) for x in args.workers.split(",")]:
                timing = bench_loader(records, replace(data, clips_per_video=k), augment, workers, args.batch, args.batches)
                rows.append({**asdict(timing), "decode_short_side": short_side})
                print(f"decode {short_side or 'full size'}, clips/video {k}, workers {workers}: {timing.clips_per_s:.1f} clips/s "
                      f"({timing.clips_per_s_per_worker:.1f} per worker, {timing.videos} videos in {timing.seconds:.1f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def _learning(args: argparse.Namespace) -> int:
    import logging

    from hydra import compose, initialize_config_module

    from ..tasks.learning_benchmark import BenchmarkSettings, run
    from . import _user_errors, register_resolvers

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    register_resolvers()

    def compose_task(name: str, overrides: list[str]):
        with initialize_config_module(config_module="video_mae.conf", version_base="1.3"):
            return compose(config_name=name, overrides=overrides)

    try:
        settings = BenchmarkSettings(
            out=str(args.out),
            world=args.world,
            labels_per_class=tuple(int(x) for x in args.labels_per_class.split(",")),
            seeds=tuple(int(x) for x in args.seeds.split(",")),
            methods=tuple(args.methods.split(",")),
            pretrain_epochs=args.pretrain_epochs,
            overrides=tuple(args.override),
        )
        run(settings, compose_task)
    except _user_errors() as err:
        print(f"vmae-bench: error: {str(err).strip()}", file=sys.stderr)
        return 2
    print((args.out / "table.md").read_text(encoding="utf-8"))
    print(f"results: {args.out / 'results.json'}, plot: {args.out / 'accuracy.png'}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from ..bench.extract import bench_extract, extract_table
    from ..bench.models import bench_model_config, build_ours
    from ..checkpoint import CheckpointError
    from ..data.lists import DataListError, VideoRecord, read_data_list
    from ..data.settings import DataSettings
    from ..engine.device import resolve_device, resolve_precision

    if args.rounds < 1:  # before the checkpoint is loaded
        print(f"vmae-bench: error: --rounds must be at least 1, got {args.rounds}", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device)
        if args.checkpoint is not None:
            from ..checkpoint import load_checkpoint
            from ..tasks.pretrain import pretrained_from_state

            state = load_checkpoint(args.checkpoint)
            model, data = pretrained_from_state(state, str(args.checkpoint))
            data = replace(data, num_workers=args.workers, decode_short_side=args.decode_short_side)
            config = state["config"]
        else:
            torch.manual_seed(0)
            preset = bench_model_config(_preset(args.model), args.frames, args.size, 2)
            model = build_ours(preset, 0.9)
            data = DataSettings(
                name="bench", demo=None if args.list else _demo_spec(), train_list=str(args.list) if args.list else None,
                num_frames=args.frames, sampling_rate=args.sampling_rate, crop_size=args.size, num_workers=args.workers,
                decode_short_side=args.decode_short_side,
            )  # fmt: skip
            config = {"model": preset, "data": {"crop_size": args.size, "mean": list(data.mean), "std": list(data.std)}}
        if args.list:
            records = read_data_list(args.list, args.root)
        else:
            train_records, val_records = data.records()
            records = val_records or train_records
    except (ValueError, CheckpointError, DataListError) as err:
        print(f"vmae-bench: error: {err}", file=sys.stderr)
        return 2
    wanted = [records[i % len(records)] for i in range(args.videos)]
    wanted = [VideoRecord(row=i, path=r.path, label=r.label) for i, r in enumerate(wanted)]
    precision = resolve_precision(args.precision, device, int(model.encoder.embed_dim))
    timings, gap = bench_extract(model, config, wanted, data, device, precision, args.batch, not args.no_transformers, args.rounds)
    print(f"{len(wanted)} videos, {data.num_frames} frames every {data.sampling_rate}, {data.crop_size} px, "
          f"{int(model.encoder.embed_dim)} wide, {precision} on {torch_device_name(device)}")  # fmt: skip
    print(extract_table(timings))
    if gap is not None:
        print(f"largest cosine distance between the two sides' embeddings: {gap:.2e}")
    if args.json:
        from dataclasses import asdict

        rows = [{**asdict(t), "videos_per_s": t.videos_per_s} for t in timings]
        args.json.write_text(json.dumps({"timings": rows, "cosine_gap": gap, "precision": precision}, indent=1) + "\n", encoding="utf-8")
    return 0


def _demo_spec():
    from ..data.demo import DemoSpec

    return DemoSpec()


def torch_device_name(device: torch.device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
