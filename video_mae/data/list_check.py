"""Checks of a data list that take seconds, run before any training starts:
labels out of range (an error), missing files and duplicate rows (reported)."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .lists import DataListError, VideoRecord

log = logging.getLogger(__name__)

SAMPLE = 5


@dataclass
class ListReport:
    source: str
    videos: int
    missing: list[VideoRecord] = field(default_factory=list)
    duplicates: list[tuple[VideoRecord, VideoRecord]] = field(default_factory=list)

    def _where(self, record: VideoRecord) -> str:
        return f"{self.source}:{record.line}" if record.line else f"{self.source} row {record.row}"

    def problems(self) -> list[str]:
        """One sentence per kind of problem, each with a sample of file:line places."""
        lines = []
        if self.missing:
            sample = ", ".join(f"{self._where(r)}: {r.path}" for r in self.missing[:SAMPLE])
            lines.append(f"{len(self.missing)} of {self.videos} videos are missing (e.g. {sample})")
        if self.duplicates:
            sample = ", ".join(f"{self._where(b)} repeats {self._where(a)}" for a, b in self.duplicates[:SAMPLE])
            lines.append(f"{len(self.duplicates)} rows repeat an earlier row (e.g. {sample})")
        return lines

    def summary(self) -> dict:
        return {"list": self.source, "videos": self.videos, "missing": len(self.missing), "duplicates": len(self.duplicates)}


def validate_records(records: Sequence[VideoRecord], source: str, num_classes: int | None = None) -> ListReport:
    """Raises DataListError (with file:line) for labels outside ``0..num_classes-1``;
    returns the missing files and duplicate rows (same path, segment and label) for
    the caller to report. Only stats files, so a million rows take seconds."""
    if num_classes is not None:
        bad = [r for r in records if not 0 <= r.label < num_classes]
        if bad:
            places = ", ".join(f"{source}:{r.line} label {r.label}" for r in bad[:SAMPLE])
            raise DataListError(f"{len(bad)} labels are outside 0..{num_classes - 1} (data.num_classes={num_classes}): {places}")
    report = ListReport(source=source, videos=len(records))
    seen: dict[tuple, VideoRecord] = {}
    by_dir: dict[str, set[str] | None] = defaultdict(lambda: None)
    for record in records:
        key = (record.path, record.start, record.end, record.label)
        if key in seen:
            report.duplicates.append((seen[key], record))
        else:
            seen[key] = record
        folder, name = os.path.split(record.path)
        # One listdir per folder is far cheaper than one stat per file on network storage.
        if by_dir[folder] is None:
            try:
                by_dir[folder] = set(os.listdir(folder or "."))
            except OSError:
                by_dir[folder] = set()
        if name not in by_dir[folder]:
            report.missing.append(record)
    return report


def check_list(records: Sequence[VideoRecord], source: str, num_classes: int | None) -> dict:
    """Validates a data list before work starts: labels out of range raise (with
    file:line); missing files and repeated rows are logged as warnings with a sample of
    places (training replaces unreadable videos, evaluation lists them). Returns the
    record a run's log keeps of the check (counts and the problems)."""
    report = validate_records(records, source, num_classes)
    problems = report.problems()
    for problem in problems:
        log.warning("%s: %s", source, problem)
    return {**report.summary(), "problems": problems}
