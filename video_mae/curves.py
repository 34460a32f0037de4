"""Curves of a run folder (``log.jsonl``) drawn into one PNG, ``curves.png``.

Reads the records that ``RunLogger`` writes: ``train`` (``step``, ``loss``, ``lr``),
``recon`` (``step``, ``hidden_mse``, ``mean_colour_mse``, ``nearest_visible_mse``) and
``val`` (``epoch``, ``val_top1``, optionally ``val_ema_top1``). Other kinds are ignored.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .run_log import read_log_records

# (field, legend) of the reconstruction panel: the model against two trivial predictors,
# so a reader sees at once whether pretraining beats "guess the clip's colour".
RECON_SERIES = (
    ("hidden_mse", "model"),
    ("mean_colour_mse", "mean colour of the clip"),
    ("nearest_visible_mse", "nearest visible tubelet"),
)


def _number(value: Any) -> float | None:
    # RunLogger writes NaN/inf as the strings "nan"/"inf"; anything else non-numeric is no point.
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _series(records: list[dict[str, Any]], x_field: str, y_field: str, x_offset: float = 0.0) -> tuple[list[float], list[float]]:
    """Finite (x, y) pairs of two fields; records lacking either are left out."""
    xs, ys = [], []
    for record in records:
        x, y = _number(record.get(x_field)), _number(record.get(y_field))
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            xs.append(x + x_offset)
            ys.append(y)
    return xs, ys


def _panels(records: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """What to draw: one dict per panel that has at least one point."""
    train, recon, val = records.get("train", []), records.get("recon", []), records.get("val", [])
    # The logged epoch is the 0-based index of the epoch just finished; +1 reads as
    # "epochs completed", the number the console prints.
    candidates = [
        dict(title="training loss", xlabel="step", ylabel="loss", log_if_positive=True,
             lines=[(None, *_series(train, "step", "loss"))]),
        dict(title="learning rate", xlabel="step", ylabel="lr", log_if_positive=False,
             lines=[(None, *_series(train, "step", "lr"))]),
        dict(title="reconstruction error on hidden tubelets", xlabel="step", ylabel="MSE", log_if_positive=False,
             lines=[(label, *_series(recon, "step", field)) for field, label in RECON_SERIES]),
        dict(title="validation top-1", xlabel="epoch", ylabel="top-1 (%)", log_if_positive=False,
             lines=[("model", *_series(val, "epoch", "val_top1", 1.0)), ("EMA", *_series(val, "epoch", "val_ema_top1", 1.0))]),
    ]  # fmt: skip
    panels = []
    for panel in candidates:
        panel["lines"] = [line for line in panel["lines"] if line[1]]
        if panel["lines"]:
            panels.append(panel)
    return panels


def draw_curves(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Draws the curves of ``run_dir/log.jsonl`` into ``out`` (default ``run_dir/curves.png``).

    Returns the PNG's path, or None when the log has nothing to plot yet (no file, or no
    train/recon/val point). Safe to call while the run is still writing its log.
    """
    # Imported here: matplotlib is slow to import and only this function needs it. Figure +
    # FigureCanvasAgg need no pyplot, so a user's chosen backend is left untouched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    run_dir = Path(run_dir)
    panels = _panels(read_log_records(run_dir / "log.jsonl"))
    if not panels:
        return None
    out = Path(out) if out is not None else run_dir / "curves.png"
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    figure = Figure(figsize=(6.0 * cols, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(run_dir.resolve().name)
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(rows, cols, index + 1)
        for label, xs, ys in panel["lines"]:
            # A single point draws no line; markers keep early runs visible.
            axes.plot(xs, ys, label=label, marker="o" if len(xs) < 30 else None, markersize=3)
        if panel["log_if_positive"] and all(y > 0 for _, _, ys in panel["lines"] for y in ys):
            axes.set_yscale("log")
        axes.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel["ylabel"])
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # steps and epochs are counts
        axes.grid(True, alpha=0.3)
        if len(panel["lines"]) > 1:
            axes.legend(fontsize="small", framealpha=0.8)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: a viewer polling curves.png never reads half a file.
    partial = out.with_name(out.name + ".partial")
    figure.savefig(partial, format="png", dpi=100)
    os.replace(partial, out)
    return out


class CurvesPainter:
    """Redraws ``curves.png`` at epoch ends, but not more often than every ``min_interval_s``
    seconds: drawing takes a few tenths of a second, which on the demo's one-second
    fine-tuning epochs would be a third of the run. ``final()`` always draws."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, min_interval_s: float = 20.0) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self._last: float | None = None

    def epoch_end(self) -> None:
        import time

        now = time.monotonic()
        if self.enabled and (self._last is None or now - self._last >= self.min_interval_s):
            self._last = now
            draw_curves(self.run_dir)

    def final(self) -> None:
        if self.enabled:
            draw_curves(self.run_dir)
