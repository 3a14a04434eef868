"""``marginlab plot`` and ``marginlab report``: figures and an HTML report of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The figure kinds of marginlab.plots.FIGURES (a test keeps them equal), spelled out so
# that building the parser does not import matplotlib and torch for every command.
FIGURE_KINDS = ("training", "loss", "margins", "norms", "lr", "kkt", "robustness", "boundary")


def _plot(args: argparse.Namespace) -> int:
    from marginlab.report import plot

    out = args.out or Path(args.run_dirs[0]) / f"{args.what}.png"
    try:
        print(plot(args.run_dirs, args.what, out))
    except ValueError as error:  # nothing to draw for this figure, or a bad --out suffix
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from marginlab.report import write_report

    print(write_report(args.run_dirs, args.out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser(
        "plot", help="draw a figure of one or several runs (overlaid) as PNG, PDF or SVG"
    )
    plot.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, drawn overlaid"
    )
    plot.add_argument(
        "--what",
        choices=FIGURE_KINDS,
        default="training",
        help="the figure (training: loss and margins, as written after training)",
    )
    plot.add_argument("--out", help="image file, .png, .pdf or .svg (default RUN_DIR/<what>.png)")
    plot.set_defaults(func=_plot)

    report = sub.add_parser(
        "report", help="write one self-contained HTML report of one or several runs"
    )
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run or sweep directories")
    report.add_argument("--out", help="HTML file (default: report.html in the first RUN_DIR)")
    report.set_defaults(func=_report)
