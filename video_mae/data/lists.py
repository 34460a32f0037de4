"""Data lists: which videos a run uses, with their labels.

Two formats, chosen by content:

* text: one video per line, ``<path> <label>``. The label is the last
  whitespace-separated token, so paths may contain spaces. Blank lines and
  lines starting with ``#`` are skipped.
* CSV: a header row naming at least ``path`` and ``label`` columns (optionally
  ``start`` and ``end`` in seconds, to use only that part of the video).

Relative paths resolve against ``root`` when given, else against the folder of
the list file. Every error names the list file and the line number.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path


class DataListError(ValueError):
    """A data list could not be read; the message names file:line."""


@dataclass(frozen=True)
class VideoRecord:
    """One row of a data list.

    row: 0-based position among the list's entries; results are keyed by it,
         never by file name (two folders may hold files with the same name).
    path: absolute or resolved path of the video file.
    label: integer class index (-1 in lists without labels is not allowed).
    start, end: optional segment in seconds.
    line: 1-based line number in the list file, for messages.
    """

    row: int
    path: str
    label: int
    start: float | None = None
    end: float | None = None
    line: int = 0


def _parse_label(text: str, where: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataListError(f"{where}: label {text!r} is not an integer") from None
    if label < 0:
        raise DataListError(f"{where}: label {label} is negative")
    return label


def _parse_seconds(text: str | None, key: str, where: str) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataListError(f"{where}: {key} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise DataListError(f"{where}: {key} {text!r} must be a finite, non-negative number of seconds")
    return value


def _resolve(path_text: str, base: Path) -> str:
    path = Path(path_text).expanduser()
    return str(path if path.is_absolute() else base / path)


def _looks_like_csv_header(line: str) -> bool:
    fields = [field.strip().lower() for field in next(csv.reader([line]))]
    return "path" in fields and "label" in fields


def read_data_list(list_path: str | Path, root: str | Path | None = None) -> list[VideoRecord]:
    """Reads a data list (text or CSV, see the module docstring)."""
    list_path = Path(list_path)
    if list_path.is_dir():
        raise DataListError(f"{list_path}: is a directory, not a data list file")
    if not list_path.is_file():
        raise DataListError(f"{list_path}: data list not found")
    base = Path(root).expanduser() if root is not None else list_path.resolve().parent
    try:
        text = list_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataListError(f"{list_path}: not UTF-8 text ({err})") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        raise DataListError(f"{list_path}: the data list has no entries")
    if _looks_like_csv_header(first):
        records = _read_csv(list_path, lines, base)
    else:
        _refuse_foreign_header(list_path, lines.index(first) + 1, first)
        records = _read_text(list_path, lines, base)
    if not records:
        raise DataListError(f"{list_path}: the data list has no entries")
    _refuse_conflicting_labels(list_path, records)
    return records


def _refuse_foreign_header(list_path: Path, number: int, first: str) -> None:
    """A first line of comma-separated names that is not a valid text row is a CSV header
    without our columns: say which columns are wanted rather than "malformed line"."""
    fields = [field.strip() for field in next(csv.reader([first]))]
    if len(fields) < 2:
        return
    try:
        int(first.rsplit(maxsplit=1)[-1])
        return  # a text row whose path holds a comma
    except ValueError:
        pass
    raise DataListError(
        f"{list_path}:{number}: a CSV header needs the columns path and label (optionally start, end); found {', '.join(fields)}"
    )


def _refuse_conflicting_labels(list_path: Path, records: list[VideoRecord]) -> None:
    """The same video (and segment) listed with two labels: one of them is wrong."""
    seen: dict[tuple[str, float | None, float | None], VideoRecord] = {}
    for record in records:
        key = (record.path, record.start, record.end)
        first = seen.setdefault(key, record)
        if first.label != record.label:
            raise DataListError(
                f"{list_path}:{record.line}: {record.path} has label {record.label} here and label "
                f"{first.label} at line {first.line}; a video has one label"
            )


def _read_text(list_path: Path, lines: list[str], base: Path) -> list[VideoRecord]:
    records: list[VideoRecord] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{list_path}:{number}"
        parts = stripped.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise DataListError(f"{where}: expected '<path> <label>', got {stripped!r}")
        path_text, label_text = parts
        label = _parse_label(label_text, where)
        records.append(VideoRecord(row=len(records), path=_resolve(path_text, base), label=label, line=number))
    return records


def _read_csv(list_path: Path, lines: list[str], base: Path) -> list[VideoRecord]:
    records: list[VideoRecord] = []
    header: list[str] | None = None
    # csv.reader over individual lines keeps the true line numbers for messages
    # (quoted fields with embedded newlines are not supported in data lists).
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line]))
        where = f"{list_path}:{number}"
        if header is None:
            header = [field.strip().lower() for field in fields]
            if len(set(header)) != len(header):
                raise DataListError(f"{where}: duplicate column names in header {header}")
            continue
        if len(fields) != len(header):
            raise DataListError(f"{where}: expected {len(header)} columns ({', '.join(header)}), got {len(fields)}")
        row = dict(zip(header, (field.strip() for field in fields)))
        if not row["path"]:
            raise DataListError(f"{where}: empty path")
        start = _parse_seconds(row.get("start"), "start", where)
        end = _parse_seconds(row.get("end"), "end", where)
        if start is not None and end is not None and end <= start:
            raise DataListError(f"{where}: end {end} is not after start {start}")
        records.append(
            VideoRecord(
                row=len(records),
                path=_resolve(row["path"], base),
                label=_parse_label(row["label"], where),
                start=start,
                end=end,
                line=number,
            )
        )
    return records


def write_data_list(path: str | Path, entries: list[tuple[str, int]]) -> None:
    """Writes a text data list of (path, label) pairs; paths are written as given."""
    lines = [f"{video} {label}\n" for video, label in entries]
    Path(path).write_text("".join(lines), encoding="utf-8")
