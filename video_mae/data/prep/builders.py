"""Data lists from the official annotation files of the standard benchmarks.

Each builder returns a :class:`BuiltList`: (video path, label) entries, the class
names in label order, and the annotated videos that were not found on disk.
Labels follow each benchmark's convention, so lists built by different people
agree: Kinetics classes in alphabetical order, SSv2 labels from its labels JSON,
UCF101 from classInd.txt (made 0-based), HMDB51 classes in alphabetical order,
a class-per-folder tree in alphabetical order of the folders.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")
FORMATS = ("kinetics", "ssv2", "ucf101", "hmdb51", "folder")


class AnnotationError(ValueError):
    """An annotation file could not be read; the message names file:line."""


@dataclass
class BuiltList:
    entries: list[tuple[str, int]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _index_videos(root: Path) -> dict[str, Path]:
    """Video files under ``root`` by file stem (first one wins)."""
    if not root.is_dir():
        raise AnnotationError(f"{root}: video folder not found")
    index: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            index.setdefault(path.stem, path)
    return index


def _read_text(path: Path) -> list[str]:
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    return path.read_text(encoding="utf-8").splitlines()


def kinetics(annotations: Path, videos: Path) -> BuiltList:
    """Kinetics CSV (``label,youtube_id,time_start,time_end,split``). Videos are found
    by stem ``<youtube_id>_<start:06d>_<end:06d>`` (the usual download name) or
    ``<youtube_id>``, anywhere under ``videos``."""
    lines = _read_text(annotations)
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not needed <= set(header):
        raise AnnotationError(f"{annotations}:1: expected columns {', '.join(sorted(needed))}, got {header}")
    rows = []
    for number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise AnnotationError(f"{annotations}:{number}: expected {len(header)} columns, got {len(fields)}")
        row = dict(zip(header, (f.strip() for f in fields)))
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise AnnotationError(f"{annotations}:{number}: time_start/time_end must be numbers") from None
        rows.append((row["label"], row["youtube_id"], start, end))
    classes = sorted({label for label, *_ in rows})
    index = _index_videos(videos)
    out = BuiltList(classes=classes)
    label_of = {name: i for i, name in enumerate(classes)}
    for label, youtube_id, start, end in rows:
        stem = f"{youtube_id}_{start:06d}_{end:06d}"
        path = index.get(stem) or index.get(youtube_id)
        if path is None:
            out.missing.append(stem)
        else:
            out.entries.append((str(path), label_of[label]))
    return out


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation file not found") from None
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None


def _ssv2_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def ssv2(annotations: Path, videos: Path, label_map: Path) -> BuiltList:
    """SSv2 JSON (a list of ``{"id", "template", ...}``) with the labels JSON
    (``{class name: "index"}``). Class = the template without brackets. Videos:
    ``<id>.webm`` (any video suffix) under ``videos``."""
    items, names = _read_json(annotations), _read_json(label_map)
    label_of = {name: int(index) for name, index in names.items()}
    classes = [name for name, _ in sorted(label_of.items(), key=lambda kv: kv[1])]
    index = _index_videos(videos)
    out = BuiltList(classes=classes)
    for position, item in enumerate(items):
        name = _ssv2_class(item.get("template", ""))
        if name not in label_of:
            raise AnnotationError(f"{annotations}: item {position} (id {item.get('id')}): class {name!r} is not in {label_map}")
        path = index.get(str(item["id"]))
        if path is None:
            out.missing.append(str(item["id"]))
        else:
            out.entries.append((str(path), label_of[name]))
    return out


def ucf101(annotations: Path, videos: Path, label_map: Path) -> BuiltList:
    """UCF101 split file (trainlist0N.txt: ``Class/v_Class_gXX_cYY.avi N``, or
    testlist0N.txt without labels) with classInd.txt (``N Class``, 1-based).
    The label comes from the class folder of each path."""
    classes_by_index = {}
    for number, line in enumerate(_read_text(label_map), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{label_map}:{number}: expected '<index> <class>', got {line.strip()!r}")
        classes_by_index[int(parts[0])] = parts[1]
    classes = [classes_by_index[i] for i in sorted(classes_by_index)]
    label_of = {name: i for i, name in enumerate(classes)}
    out = BuiltList(classes=classes)
    for number, line in enumerate(_read_text(annotations), start=1):
        if not line.strip():
            continue
        relative = line.split()[0]
        folder = relative.split("/")[0]
        if folder not in label_of:
            raise AnnotationError(f"{annotations}:{number}: class folder {folder!r} is not in {label_map}")
        path = Path(videos) / relative
        if path.is_file():
            out.entries.append((str(path), label_of[folder]))
        else:
            out.missing.append(relative)
    return out


def hmdb51(annotations: Path, videos: Path, split: int, subset: str) -> BuiltList:
    """HMDB51 split folder (``<class>_test_split<N>.txt`` files with lines
    ``<video> <0|1|2>``: 1 = train, 2 = test, 0 = unused). Videos:
    ``videos/<class>/<video>``."""
    if subset not in ("train", "test"):
        raise AnnotationError(f"--subset must be train or test, got {subset!r}")
    files = sorted(Path(annotations).glob(f"*_test_split{split}.txt"))
    if not files:
        raise AnnotationError(f"{annotations}: no *_test_split{split}.txt files")
    pattern = re.compile(rf"^(.*)_test_split{split}\.txt$")
    classes = [pattern.match(f.name).group(1) for f in files]
    wanted = "1" if subset == "train" else "2"
    out = BuiltList(classes=classes)
    for label, (name, file) in enumerate(zip(classes, files)):
        for number, line in enumerate(_read_text(file), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{file}:{number}: expected '<video> <0|1|2>', got {line.strip()!r}")
            if parts[1] != wanted:
                continue
            path = Path(videos) / name / parts[0]
            if path.is_file():
                out.entries.append((str(path), label))
            else:
                out.missing.append(f"{name}/{parts[0]}")
    return out


def folder_tree(videos: Path) -> BuiltList:
    """One sub-folder per class (sorted names = labels); every video file below it."""
    root = Path(videos)
    if not root.is_dir():
        raise AnnotationError(f"{root}: video folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise AnnotationError(f"{root}: no class folders")
    out = BuiltList(classes=classes)
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                out.entries.append((str(path), label))
    return out


def read_classes(path: Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def relabel(built: BuiltList, classes: list[str], source: str) -> BuiltList:
    """Maps ``built`` onto an existing class order (so a val list uses the train list's labels)."""
    position = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(built.classes) - position.keys())
    if unknown:
        raise AnnotationError(f"{source}: classes not in the given classes file: {', '.join(unknown[:10])}")
    entries = [(path, position[built.classes[label]]) for path, label in built.entries]
    return BuiltList(entries=entries, classes=list(classes), missing=built.missing)
