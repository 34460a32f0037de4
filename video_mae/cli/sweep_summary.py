"""A table of a Hydra multirun: what each job overrode, and what it ended with.

Each job directory holds ``.hydra/overrides.yaml`` (written by Hydra) and our
``summary.json`` (and, for fine-tuning and evaluation, ``metrics.json``). The
table has one row per job: the job's folder, one column per overridden key, then
the final numbers.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

# Final numbers worth a column, in this order, when a job reports them.
METRICS = ("last_loss", "first_loss", "best_val_top1", "top1", "top5", "mean_class_accuracy", "step", "epochs",
           "nonfinite_skipped", "bad_videos")  # fmt: skip


def _overrides(job: Path) -> dict[str, str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    pairs = {}
    for item in items:
        key, _, value = str(item).partition("=")
        pairs[key.lstrip("+~")] = value
    return pairs


def _numbers(job: Path) -> dict[str, object]:
    numbers: dict[str, object] = {}
    for name in ("summary.json", "metrics.json"):
        path = job / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            test = data.get("test") if isinstance(data.get("test"), dict) else {}
            for key in METRICS:
                value = data.get(key, test.get(key))
                if value is not None and key not in numbers:
                    numbers[key] = value
    return numbers


def summarize(sweep_dir: str | Path) -> tuple[list[str], list[dict]]:
    """(columns, rows) for the jobs below ``sweep_dir`` (any folder holding .hydra/)."""
    sweep_dir = Path(sweep_dir)
    jobs = sorted(p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir())
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (.hydra/) found")
    rows = []
    for job in jobs:
        overrides = _overrides(job)
        numbers = _numbers(job)
        rows.append({"job": str(job.relative_to(sweep_dir)), **overrides, **numbers, "status": "done" if numbers else "no result"})
    keys = sorted({k for job in jobs for k in _overrides(job)})
    # Keep only overrides that differ between jobs: the swept ones.
    swept = [k for k in keys if len({str(r.get(k)) for r in rows}) > 1] or keys
    metrics = [m for m in METRICS if any(m in r for r in rows)]
    return ["job", *swept, *metrics, "status"], rows


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_csv(columns: list[str], rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
