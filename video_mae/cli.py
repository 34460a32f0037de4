"""Console entry points.

The Hydra apps read their configs from the package ``video_mae.conf`` (the
repository's ``conf/`` folder), so they work from any directory and however the
package was installed; users add their own config folders with ``--config-dir``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CONFIG_PATH = "pkg://video_mae.conf"


def run_name(override_dirname: str) -> str:
    """A run directory name from Hydra's ``override_dirname``: the overrides of the
    command ('default' without any), flattened into one safe path component."""
    name = override_dirname.replace("/", "_").replace("\\", "_") or "default"
    if len(name) > 120:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("vmae_run_name"):
        OmegaConf.register_new_resolver("vmae_run_name", run_name)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input (configs, lists, videos, checkpoints): reported in one
    line that names the file/line/key, without a traceback."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .checkpoint import CheckpointError
    from .data.dataset import TooManyBadVideos
    from .data.lists import DataListError
    from .engine.train import NonFiniteLossError
    from .models.pretrained import PretrainedMismatch

    return (
        ValueError,
        FileExistsError,
        DataListError,
        CheckpointError,
        TooManyBadVideos,
        NonFiniteLossError,
        PretrainedMismatch,
        HydraException,
        OmegaConfBaseException,
    )


def _hydra_app(config_name: str, task):
    import hydra

    register_resolvers()
    prog = {"evaluate": "vmae-eval"}.get(config_name, f"vmae-{config_name}")

    def main(cfg) -> None:
        try:
            summary = task(cfg)
        except _user_errors() as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            message = str(err).strip().replace("\n", "; ")
            print(f"{prog}: error: {message}", file=sys.stderr)
            print(f"{prog}: (set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
            sys.exit(2)
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process reports
            print(json.dumps(summary, indent=1))

    if os.environ.get("RANK", "0") != "0" or os.environ.get("SLURM_PROCID", "0") != "0":
        # Under torchrun / srun only the first process writes: the others keep Hydra's
        # .hydra/ folder and log file out of the run directory.
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    return hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(main)


def pretrain() -> None:
    """vmae-pretrain: masked-autoencoder pretraining (a Hydra app)."""
    from .tasks.pretrain import run

    _hydra_app("pretrain", run)()


def finetune() -> None:
    """vmae-finetune: fine-tuning or probing for action recognition (a Hydra app)."""
    from .tasks.finetune import run

    _hydra_app("finetune", run)()


def evaluate() -> None:
    """vmae-eval: multi-view evaluation of a fine-tuned checkpoint (a Hydra app)."""
    from .tasks.evaluate import run

    _hydra_app("evaluate", run)()


def extract() -> None:
    """vmae-extract: clip and video embeddings for a data list (a Hydra app)."""
    from .tasks.extract import run

    _hydra_app("extract", run)()


def visualize(argv: list[str] | None = None) -> int:
    """vmae-visualize: reconstruction pictures of a video from a pretraining checkpoint."""
    parser = argparse.ArgumentParser(
        prog="vmae-visualize",
        description="Render original / masked / reconstructed frames of a video with a pretraining checkpoint.",
    )
    parser.add_argument("checkpoint", type=Path, help="a pretraining checkpoint (e.g. <run>/checkpoints/last.pt)")
    parser.add_argument("video", type=Path, help="a video file")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: the current one)")
    parser.add_argument(
        "--formats", default="png,gif", help="comma-separated, from png (grid), gif, mp4 (animations); default png,gif"
    )
    parser.add_argument("--mask-ratio", type=float, default=None, help="override the checkpoint's mask ratio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask (default 0)")
    parser.add_argument("--scale", type=int, default=4, help="pixel upscaling of the outputs (default 4)")
    parser.add_argument("--reader", default="auto", choices=["auto", "decord", "pyav"])
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - {"png", "gif", "mp4"})
    if unknown or not formats:
        parser.error(f"--formats takes png, gif and mp4; got {args.formats!r}")
    if args.scale < 1:
        parser.error("--scale must be at least 1")

    from .checkpoint import CheckpointError
    from .data.readers import VideoReadError
    from .tasks.pretrain import load_pretrained, read_center_clip
    from .visualize import reconstruct, reconstruction_grid, save_gif, save_png, side_by_side

    try:
        model, data = load_pretrained(args.checkpoint, mask_ratio=args.mask_ratio)
        clip = read_center_clip(args.video, data, args.reader)
    except (CheckpointError, VideoReadError, ValueError) as err:
        print(f"vmae-visualize: error: {err}", file=sys.stderr)
        return 2
    recon = reconstruct(model, clip, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.video.stem}_recon"
    written = []
    if "png" in formats:
        save_png(reconstruction_grid(recon), f"{stem}.png", scale=args.scale)
        written.append(f"{stem}.png")
    animation = side_by_side(recon)
    if "gif" in formats:
        save_gif(animation, f"{stem}.gif", scale=args.scale)
        written.append(f"{stem}.gif")
    if "mp4" in formats:
        from .data.encode import write_mp4

        big = animation.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
        write_mp4(f"{stem}.mp4", big, fps=8)
        written.append(f"{stem}.mp4")
    for path in written:
        print(path)
    return 0


def data_tool(argv: list[str] | None = None) -> int:
    """vmae-data: data-list tools."""
    from .data import builders

    parser = argparse.ArgumentParser(prog="vmae-data", description="Data-list tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build-list",
        help="write a data list (and classes.txt) from a benchmark's official annotation files or a class-per-folder tree",
        description="Write a data list '<path> <label>' and the class names, from official annotations.",
    )
    build.add_argument("format", choices=builders.FORMATS)
    build.add_argument("--videos", type=Path, required=True, help="folder holding the video files")
    build.add_argument("--out", type=Path, required=True, help="data list to write")
    build.add_argument("--annotations", type=Path, help="kinetics: train/validate CSV; ssv2: train/validation JSON; "
                       "ucf101: trainlist0N.txt / testlist0N.txt; hmdb51: the split-files folder")  # fmt: skip
    build.add_argument("--label-map", type=Path, help="ssv2: something-something-v2-labels.json; ucf101: classInd.txt")
    build.add_argument("--split", type=int, default=1, help="hmdb51: split 1, 2 or 3 (default 1)")
    build.add_argument("--subset", default="train", choices=["train", "test"], help="hmdb51: which videos of the split")
    build.add_argument(
        "--classes", type=Path, help="class names file: used when it exists (labels follow it), else written "
        "(default: classes.txt beside --out)"
    )  # fmt: skip
    build.add_argument("--strict", action="store_true", help="fail if an annotated video is missing")
    check = commands.add_parser(
        "check",
        help="probe every video of a list (open, size, codec, decode a clip); write a report and a clean list",
        description="Exit code 0 when every video is readable, 1 when some are not, 2 on bad input.",
    )
    check.add_argument("list", type=Path)
    check.add_argument("--root", type=Path, help="folder relative paths resolve against (default: the list's)")
    check.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    check.add_argument("--timeout", type=float, default=60.0, help="seconds per video before it counts as hung (default 60)")
    check.add_argument("--report", type=Path, help="CSV report (default: <list>.report.csv)")
    check.add_argument("--clean", type=Path, help="the list without the bad rows (default: <list>.clean.txt)")
    check.add_argument("--num-frames", type=int, default=16)
    check.add_argument("--sampling-rate", type=int, default=4)
    check.add_argument("--reader", default="auto", choices=["auto", "decord", "pyav"])
    reencode = commands.add_parser(
        "reencode",
        help="rewrite a list's videos as small H.264 files with frequent key frames, and write their list",
        description="Keeps the folder structure below --source-root, frame rate and frame count; drops audio. "
        "Resumable: finished files are kept.",
    )
    reencode.add_argument("list", type=Path)
    reencode.add_argument("--out-root", type=Path, required=True, help="folder for the new files")
    reencode.add_argument("--source-root", type=Path, help="common folder of the sources (default: the list's root)")
    reencode.add_argument("--root", type=Path, help="folder relative paths in the list resolve against")
    reencode.add_argument("--out-list", type=Path, help="data list of the new files (default: <out-root>/<list name>)")
    reencode.add_argument("--short-side", type=int, default=256)
    reencode.add_argument("--keyframe-interval", type=int, default=16)
    reencode.add_argument("--crf", type=int, default=23)
    reencode.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    reencode.add_argument("--timeout", type=float, default=1800.0, help="seconds per video (default 1800)")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check_list(args)
    if args.command == "reencode":
        return _reencode_list(args)

    need = {"kinetics": ["annotations"], "ssv2": ["annotations", "label_map"], "ucf101": ["annotations", "label_map"], "hmdb51": ["annotations"]}
    for key in need.get(args.format, []):
        if getattr(args, key) is None:
            parser.error(f"{args.format} needs --{key.replace('_', '-')}")
    videos = args.videos.resolve()
    try:
        if args.format == "kinetics":
            built = builders.kinetics(args.annotations, videos)
        elif args.format == "ssv2":
            built = builders.ssv2(args.annotations, videos, args.label_map)
        elif args.format == "ucf101":
            built = builders.ucf101(args.annotations, videos, args.label_map)
        elif args.format == "hmdb51":
            built = builders.hmdb51(args.annotations, videos, args.split, args.subset)
        else:
            built = builders.folder_tree(videos)
        classes_path = args.classes or args.out.parent / "classes.txt"
        if classes_path.is_file():
            built = builders.relabel(built, builders.read_classes(classes_path), str(args.annotations or videos))
    except builders.AnnotationError as err:
        print(f"vmae-data: error: {err}", file=sys.stderr)
        return 2
    if built.missing:
        sample = ", ".join(built.missing[:5])
        print(f"vmae-data: {len(built.missing)} annotated videos not found under {videos} (e.g. {sample})", file=sys.stderr)
        if args.strict:
            return 1
    if not built.entries:
        print(f"vmae-data: error: no videos found under {videos}; nothing written", file=sys.stderr)
        return 2
    from .data.lists import write_data_list

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_data_list(args.out, built.entries)
    if not classes_path.is_file():
        classes_path.write_text("".join(f"{name}\n" for name in built.classes), encoding="utf-8")
    print(f"wrote {len(built.entries)} videos in {len(built.classes)} classes to {args.out}; class names: {classes_path}")
    return 0


def _read_list_or_report(path: Path, root: Path | None):
    from .data.lists import DataListError, read_data_list

    try:
        return read_data_list(path, root)
    except DataListError as err:
        print(f"vmae-data: error: {err}", file=sys.stderr)
        return None


def _check_list(args) -> int:
    import csv as csv_module
    from dataclasses import asdict

    from tqdm.auto import tqdm

    from .data.lists import write_data_list
    from .data.probe import ProbeResult, ProbeTask, probe_video
    from .data.watchdog import Crashed, TimedOut, map_with_timeout

    records = _read_list_or_report(args.list, args.root)
    if records is None:
        return 2
    tasks = [ProbeTask(r.path, args.num_frames, args.sampling_rate, args.reader) for r in records]
    results: list[ProbeResult | None] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc="videos", unit="video") as bar:
        for index, result in map_with_timeout(probe_video, tasks, args.workers, args.timeout):
            if isinstance(result, TimedOut):
                result = ProbeResult(tasks[index].path, "bad", f"timeout: no answer after {result.seconds:g} s")
            elif isinstance(result, Crashed):
                result = ProbeResult(tasks[index].path, "bad", f"probe failed: {result.reason}")
            results[index] = result
            bar.update(1)
    report = args.report or args.list.with_name(args.list.stem + ".report.csv")
    clean = args.clean or args.list.with_name(args.list.stem + ".clean.txt")
    with report.open("w", newline="", encoding="utf-8") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=["row", "line", *asdict(results[0]).keys()] if results else ["row"])
        writer.writeheader()
        for record, result in zip(records, results):
            writer.writerow({"row": record.row, "line": record.line, **asdict(result)})
    good = [(r.path, r.label) for r, result in zip(records, results) if result.status == "ok"]
    write_data_list(clean, good)
    bad = [(r, result) for r, result in zip(records, results) if result.status != "ok"]
    for record, result in bad[:10]:
        print(f"{args.list}:{record.line}: {record.path}: {result.reason}", file=sys.stderr)
    print(f"{len(records) - len(bad)} of {len(records)} videos readable; report: {report}; clean list: {clean}")
    return 1 if bad else 0


def _reencode_list(args) -> int:
    from tqdm.auto import tqdm

    from .data.lists import write_data_list
    from .data.reencode import ReencodeTask, reencode_video, target_path
    from .data.watchdog import Crashed, TimedOut, map_with_timeout

    records = _read_list_or_report(args.list, args.root)
    if records is None:
        return 2
    source_root = args.source_root or Path(os.path.commonpath([str(Path(r.path).resolve().parent) for r in records]))
    try:
        targets = [target_path(r.path, source_root, args.out_root) for r in records]
    except ValueError:
        print(f"vmae-data: error: some videos are not below --source-root {source_root}", file=sys.stderr)
        return 2
    tasks = [ReencodeTask(r.path, str(t), args.short_side, args.keyframe_interval, args.crf) for r, t in zip(records, targets)]
    failed = {}
    with tqdm(total=len(tasks), desc="videos", unit="video") as bar:
        for index, result in map_with_timeout(reencode_video, tasks, args.workers, args.timeout):
            if isinstance(result, TimedOut):
                result = f"timeout after {result.seconds:g} s"
            elif isinstance(result, Crashed):
                result = result.reason
            if result:
                failed[index] = result
            bar.update(1)
    out_list = args.out_list or args.out_root / args.list.with_suffix(".txt").name
    entries = [(str(t), r.label) for i, (r, t) in enumerate(zip(records, targets)) if i not in failed]
    out_list.parent.mkdir(parents=True, exist_ok=True)
    write_data_list(out_list, entries)
    for index, reason in list(failed.items())[:10]:
        print(f"{args.list}:{records[index].line}: {records[index].path}: {reason}", file=sys.stderr)
    print(f"re-encoded {len(entries)} of {len(records)} videos into {args.out_root}; list: {out_list}")
    return 1 if failed else 0


def convert(argv: list[str] | None = None) -> int:
    """vmae-convert: released VideoMAE weights in, Hugging Face directories out."""
    parser = argparse.ArgumentParser(prog="vmae-convert", description="Convert VideoMAE checkpoints.")
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import",
        help="a transformers VideoMAE directory or an official VideoMAE/V2 .pth -> our checkpoint",
        description="Write one of our checkpoints (usable as pretrained= and checkpoint=) from released weights. "
        "Nothing in the source file is executed.",
    )
    imp.add_argument("source", type=Path, help="a transformers model directory, or an official .pth file")
    imp.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    imp.add_argument("--model", help="official .pth only: the architecture preset (vit_s, vit_b, vit_l, vit_h, vit_g)")
    imp.add_argument("--num-frames", type=int, default=16, help="official .pth only: frames per clip (default 16)")
    imp.add_argument("--img-size", type=int, default=224, help="official .pth only: crop size (default 224)")
    exp = commands.add_parser(
        "export",
        help="our pretraining or fine-tuned checkpoint -> a transformers directory",
        description="Write config.json and model.safetensors that transformers' from_pretrained loads.",
    )
    exp.add_argument("checkpoint", type=Path)
    exp.add_argument("--out", type=Path, required=True, help="directory to write")
    args = parser.parse_args(argv)

    from .checkpoint import CheckpointError, save_checkpoint
    from .convert import ConversionError, UnsafeCheckpoint, convert_checkpoint, export_huggingface

    try:
        if args.command == "import":
            preset = None
            if args.model is not None:
                from importlib import resources

                from omegaconf import OmegaConf

                preset_file = resources.files("video_mae.conf").joinpath("model", f"{args.model}.yaml")
                if not preset_file.is_file():
                    parser.error(f"--model {args.model}: no such preset (vit_tiny, vit_s, vit_b, vit_l, vit_h, vit_g)")
                preset = OmegaConf.to_container(OmegaConf.create(preset_file.read_text(encoding="utf-8")), resolve=False)
            checkpoint = convert_checkpoint(args.source, preset, num_frames=args.num_frames, img_size=args.img_size)
            save_checkpoint(checkpoint, args.out)
            origin = checkpoint["converted_from"]
            print(f"wrote {args.out} ({origin['format']} {origin['architecture']}, {len(checkpoint['model'])} tensors)")
        else:
            folder = export_huggingface(args.checkpoint, args.out)
            print(f"wrote {folder}/config.json and {folder}/model.safetensors")
    except (ConversionError, UnsafeCheckpoint, CheckpointError, FileNotFoundError) as err:
        print(f"vmae-convert: error: {err}", file=sys.stderr)
        return 2
    return 0


def _embed_query_videos(args, meta: dict) -> tuple[np.ndarray, list[dict]]:
    """Embeds --list / --videos queries the way the gallery was embedded (its meta.json)."""
    from omegaconf import OmegaConf

    from .data.lists import VideoRecord, read_data_list
    from .data.transforms import EvalClipTransform
    from .engine.device import resolve_device, resolve_precision
    from .tasks.extract import embed_records, file_digest, load_model_and_data

    checkpoint = str(args.checkpoint or meta["checkpoint"])
    if file_digest(checkpoint) != meta["checkpoint_sha256"]:
        print(f"vmae-retrieve: warning: {checkpoint} is not the checkpoint the gallery was embedded with", file=sys.stderr)
    cfg = OmegaConf.create(
        {"checkpoint": checkpoint, "root": None, "num_workers": 0, "reader": None,
         "sampling": meta["sampling"], "sampling_rate": meta["sampling_rate"]}
    )  # fmt: skip
    model, data, _ = load_model_and_data(cfg)
    if args.list is not None:
        records = read_data_list(args.list, data.root)
    else:
        records = [VideoRecord(row=i, path=str(p), label=-1) for i, p in enumerate(args.videos)]
    device = resolve_device(args.device)
    model.to(device)
    transform = EvalClipTransform(data.crop_size, data.mean, data.std, meta["short_side"], num_crops=1, normalize=False)
    videos, _, index, failed = embed_records(
        model, data, records, transform, meta["num_clips"], "float32", False, 4, 32, device, resolve_precision("auto", device)
    )
    for row in failed:
        print(f"vmae-retrieve: warning: {row['path']}: {row['reason']} (not searched)", file=sys.stderr)
    return videos, index


def retrieve(argv: list[str] | None = None) -> int:
    """vmae-retrieve: nearest gallery videos for query videos, and retrieval metrics."""
    parser = argparse.ArgumentParser(
        prog="vmae-retrieve",
        description="Search an embeddings folder (from vmae-extract) with queries: another embeddings folder, "
        "a data list, or video files. Cosine similarity; FAISS when installed, else exact chunked search.",
    )
    parser.add_argument("gallery", type=Path, help="embeddings folder to search")
    queries = parser.add_mutually_exclusive_group(required=True)
    queries.add_argument("--queries", type=Path, help="an embeddings folder of query videos")
    queries.add_argument("--list", type=Path, help="a data list of query videos (embedded like the gallery)")
    queries.add_argument("--videos", type=Path, nargs="+", help="query video files (embedded like the gallery)")
    parser.add_argument("--checkpoint", type=Path, help="for --list/--videos: the model (default: the gallery's)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--out", type=Path, help="results as .csv or .json (default: CSV on standard output)")
    parser.add_argument("--eval", action="store_true", help="recall@1/5/10 and mAP from the labels (queries and gallery need them)")
    parser.add_argument("--metrics", type=Path, help="with --eval: also write the metrics to this JSON file")
    parser.add_argument("--backend", default="auto", choices=["auto", "faiss", "exact"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.eval and args.videos:
        parser.error("--eval needs labelled queries: use --queries or --list")

    import csv as csv_module

    from .embedding_store import EmbeddingFolder
    from .engine.search import make_index, retrieval_metrics

    try:
        gallery_folder = EmbeddingFolder(args.gallery)
        gallery, gallery_index = gallery_folder.load()
        meta = gallery_folder.read_meta() or {}
        if args.queries is not None:
            query_vectors, query_index = EmbeddingFolder(args.queries).load()
            if query_vectors.shape[1] != gallery.shape[1]:
                raise ValueError(f"queries have {query_vectors.shape[1]} dimensions, the gallery {gallery.shape[1]}")
        else:
            query_vectors, query_index = _embed_query_videos(args, meta)
        if len(query_index) == 0:
            raise ValueError("no query could be embedded")
        index = make_index(gallery, args.backend)
        scores, neighbours = index.search(query_vectors.astype("float32"), args.top_k)
    except (FileNotFoundError, ValueError) as err:
        print(f"vmae-retrieve: error: {err}", file=sys.stderr)
        return 2
    results = []
    for q, query in enumerate(query_index):
        for rank, (g, score) in enumerate(zip(neighbours[q], scores[q]), start=1):
            item = gallery_index[int(g)]
            results.append({
                "query_row": query["row"], "query_path": query["path"], "query_label": query["label"], "rank": rank,
                "gallery_row": item["row"], "gallery_path": item["path"], "gallery_label": item["label"],
                "score": round(float(score), 6),
            })  # fmt: skip
    if args.out is not None and args.out.suffix == ".json":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    else:
        handle = args.out.open("w", newline="", encoding="utf-8") if args.out is not None else sys.stdout
        writer = csv_module.DictWriter(handle, fieldnames=list(results[0]) if results else ["query_row"])
        writer.writeheader()
        writer.writerows(results)
        if args.out is not None:
            handle.close()
    if args.eval:
        metrics = retrieval_metrics(
            query_vectors.astype("float32"),
            [int(r["label"]) for r in query_index],
            gallery,
            [int(r["label"]) for r in gallery_index],
        )
        text = json.dumps(metrics, indent=1)
        print(text, file=sys.stderr if args.out is None else sys.stdout)
        if args.metrics is not None:
            args.metrics.write_text(text + "\n", encoding="utf-8")
    return 0


def _preset_sizes(name: str):
    from importlib import resources

    from omegaconf import OmegaConf

    from .bench import ModelSize

    file = resources.files("video_mae.conf").joinpath("model", f"{name}.yaml")
    if not file.is_file():
        raise ValueError(f"--model {name}: no such preset (vit_tiny, vit_s, vit_b, vit_l, vit_h, vit_g)")
    preset = OmegaConf.to_container(OmegaConf.create(file.read_text(encoding="utf-8")), resolve=False)
    enc = preset["encoder"]
    return ModelSize(
        embed_dim=enc["embed_dim"], depth=enc["depth"], num_heads=enc["num_heads"], decoder_dim=preset["decoder_dim"],
        decoder_depth=preset["decoder_depth"], decoder_num_heads=preset["decoder_num_heads"],
        patch_size=enc["patch_size"], mlp_ratio=enc["mlp_ratio"],
    )  # fmt: skip


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
    models.add_argument("--decoder-mask-ratio", type=float, default=0.0,
                        help="also time our pretraining step with running-cell decoder masking (VideoMAE V2: 0.5)")
    models.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    models.add_argument("--device", default="auto")
    models.add_argument("--warmup", type=int, default=3)
    models.add_argument("--repeats", type=int, default=10)
    models.add_argument("--compile", action="store_true", help="torch.compile our models")
    models.add_argument("--no-transformers", action="store_true", help="skip the transformers side")
    models.add_argument("--json", type=Path, help="also write the results as JSON")
    loader = commands.add_parser("loader", help="clips/s per worker of the training loader on a data list")
    loader.add_argument("--list", type=Path, help="data list (default: the demo training list)")
    loader.add_argument("--root", type=Path)
    loader.add_argument("--clips-per-video", default="1,4", help="comma-separated (default 1,4)")
    loader.add_argument("--workers", default="0", help="comma-separated worker counts (default 0)")
    loader.add_argument("--frames", type=int, default=16)
    loader.add_argument("--sampling-rate", type=int, default=4)
    loader.add_argument("--crop", type=int, default=224)
    loader.add_argument("--reader", default="auto", choices=["auto", "decord", "pyav"])
    loader.add_argument("--decode-short-side", default="full",
                        help="comma-separated: 'full' or a short side to decode at (e.g. full,256; default full)")
    loader.add_argument("--batch", type=int, default=4)
    loader.add_argument("--batches", type=int, default=10)
    loader.add_argument("--json", type=Path)
    reader = commands.add_parser("reader", help="resident memory over many open/decode/close cycles of a reader")
    reader.add_argument("--list", type=Path, help="data list (default: the demo training list)")
    reader.add_argument("--root", type=Path)
    reader.add_argument("--decodes", type=int, default=10000)
    reader.add_argument("--readers", default="decord,pyav", help="comma-separated backends (default decord,pyav)")
    reader.add_argument("--frames", type=int, default=16)
    reader.add_argument("--sampling-rate", type=int, default=4)
    reader.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from dataclasses import asdict, replace

    from .engine.device import resolve_device, resolve_precision

    if args.command == "models":
        from .bench import bench_models, timings_json, timings_table

        try:
            size = _preset_sizes(args.model)
            device = resolve_device(args.device)
        except ValueError as err:
            print(f"vmae-bench: error: {err}", file=sys.stderr)
            return 2
        precision = resolve_precision(args.precision, device)
        results, peak = bench_models(
            size, args.frames, args.size, args.tubelet, args.batch, args.mask_ratio, precision, device,
            args.warmup, args.repeats, args.compile, not args.no_transformers, decoder_mask_ratio=args.decoder_mask_ratio,
        )  # fmt: skip
        settings = {**{k: v for k, v in vars(args).items() if k not in ("json", "command")}, "precision": precision,
                    "device": str(device), "device_name": torch_device_name(device)}  # fmt: skip
        print(f"{settings['device_name']}, {args.model}, {args.frames}x{args.size}x{args.size}, tubelet {args.tubelet}, "
              f"batch {args.batch}, mask {args.mask_ratio}, {precision}")  # fmt: skip
        print(timings_table(results, peak))
        if args.json:
            args.json.write_text(json.dumps(timings_json(results, peak, settings), indent=1, default=str) + "\n", encoding="utf-8")
        return 0

    from .data.lists import read_data_list
    from .data.settings import DataSettings

    if args.command == "reader":
        from .bench import bench_reader_memory
        from .data.readers import decord_available

        data = DataSettings(name="bench", demo=None if args.list else _demo_spec(), train_list=str(args.list) if args.list else None)
        records = read_data_list(args.list, args.root) if args.list else data.records()[0]
        rows = []
        for backend in args.readers.split(","):
            if backend == "decord" and not decord_available():
                print("decord: not installed, skipped")
                continue
            result = bench_reader_memory([r.path for r in records], backend, args.decodes, args.frames, args.sampling_rate)
            rows.append(asdict(result))
            print(f"{backend}: {result.decodes} decodes in {result.seconds:.1f} s; resident memory {result.rss_start_mib:.1f} -> "
                  f"{result.rss_end_mib:.1f} MiB (max {result.rss_max_mib:.1f}, growth {result.rss_end_mib - result.rss_start_mib:+.1f} MiB)")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        return 0

    from .bench import bench_loader
    from .data.transforms import MultiScaleCropTransform

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


def sweep(argv: list[str] | None = None) -> int:
    """vmae-sweep: a table of a multirun folder, overridden values against final metrics."""
    parser = argparse.ArgumentParser(prog="vmae-sweep", description="Summarise a Hydra multirun folder (-m) as a table.")
    parser.add_argument("folder", type=Path, help="the sweep directory (e.g. runs/pretrain-multirun)")
    parser.add_argument("--markdown", type=Path, help="default: <folder>/summary.md")
    parser.add_argument("--csv", type=Path, help="default: <folder>/summary.csv")
    args = parser.parse_args(argv)

    from .sweep_summary import summarize, to_csv, to_markdown

    try:
        columns, rows = summarize(args.folder)
    except FileNotFoundError as err:
        print(f"vmae-sweep: error: {err}", file=sys.stderr)
        return 2
    markdown = to_markdown(columns, rows)
    (args.markdown or args.folder / "summary.md").write_text(markdown, encoding="utf-8")
    (args.csv or args.folder / "summary.csv").write_text(to_csv(columns, rows), encoding="utf-8")
    print(markdown, end="")
    return 0


def _demo_spec():
    from .data.demo import DemoSpec

    return DemoSpec()


def torch_device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(visualize())
