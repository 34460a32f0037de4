"""vmae-sweep: one table from the runs of a Hydra multirun folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
