"""vmae-data: data lists (build, check) and offline re-encoding."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..data.readers import BACKENDS as READERS


def data_tool(argv: list[str] | None = None) -> int:
    """vmae-data: data-list tools."""
    from ..data.prep import builders

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
    check.add_argument("--reader", default="auto", choices=list(READERS))
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

    need = {
        "kinetics": ["annotations"],
        "ssv2": ["annotations", "label_map"],
        "ucf101": ["annotations", "label_map"],
        "hmdb51": ["annotations"],
    }
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
    from ..data.lists import write_data_list

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_data_list(args.out, built.entries)
    if not classes_path.is_file():
        classes_path.write_text("".join(f"{name}\n" for name in built.classes), encoding="utf-8")
    print(f"wrote {len(built.entries)} videos in {len(built.classes)} classes to {args.out}; class names: {classes_path}")
    return 0


def _read_list_or_report(path: Path, root: Path | None):
    from ..data.lists import DataListError, read_data_list

    try:
        return read_data_list(path, root)
    except DataListError as err:
        print(f"vmae-data: error: {err}", file=sys.stderr)
        return None


def _check_list(args: argparse.Namespace) -> int:
    import csv as csv_module
    from dataclasses import asdict

    from tqdm.auto import tqdm

    from ..data.lists import write_data_list
    from ..data.prep.check import ProbeResult, ProbeTask, probe_video
    from ..data.prep.watchdog import Crashed, TimedOut, map_with_timeout

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


def _reencode_list(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data.lists import write_data_list
    from ..data.prep.reencode import ReencodeTask, reencode_video, target_path
    from ..data.prep.watchdog import Crashed, TimedOut, map_with_timeout

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
