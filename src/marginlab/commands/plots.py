"""``marginlab plot``: figures of a run."""

from __future__ import annotations

import argparse


def _plot(args: argparse.Namespace) -> int:
    from marginlab.runs.plots import plot_training

    print(plot_training(args.run_dir, args.out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="plot loss and margins of a run")
    plot.add_argument("run_dir")
    plot.add_argument("--out", help="image file (default RUN_DIR/training.png)")
    plot.set_defaults(func=_plot)
