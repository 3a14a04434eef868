"""One live line per run while it trains, then a summary table."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.table import Table

from marginlab.numerics import format_log10

# Without a terminal (CI, a log file) the line is printed at most this often, in seconds.
PLAIN_PERIOD = 10.0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def progress_line(name: str, row: dict) -> str:
    """Format one metrics row as the progress line.

    Examples
    --------
    >>> progress_line("r", {"epoch": 3, "log10_loss_mean": -881.5, "normalized_margin": 1e-4,
    ...                     "alpha": 0.5, "rollbacks": 2, "train_acc": 1.0})
    'r | epoch 3 | loss 3.2e-882 | margin 0.0001 | acc 100.0% | alpha 0.5 | rollbacks 2'
    """
    margin = row.get("normalized_margin")
    if margin is None:
        margin = row.get("normalized_margin_layers")
    return (
        f"{name} | epoch {row['epoch']} | loss {format_log10(row['log10_loss_mean'])} | "
        f"margin {_number(margin)} | acc {100 * row['train_acc']:.1f}% | "
        f"alpha {_number(row['alpha'])} | rollbacks {row['rollbacks']}"
    )


class Progress:
    """Shows the latest metrics row in place on a terminal, or periodically otherwise."""

    def __init__(self, name: str, enabled: bool = True, stream=None) -> None:
        self.name = name
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.last_row: dict | None = None
        self._last_print = 0.0
        self._width = 0

    def update(self, row: dict) -> None:
        self.last_row = row
        if not self.enabled:
            return
        line = progress_line(self.name, row)
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.stream.flush()
        elif time.monotonic() - self._last_print >= PLAIN_PERIOD:
            self._last_print = time.monotonic()
            print(line, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.enabled:
            self._end_line()
            print(text, file=self.stream, flush=True)

    def _end_line(self) -> None:
        if self.live and self._width:
            self.stream.write("\n")
            self._width = 0

    def close(self) -> None:
        if self.enabled and self.last_row is not None:
            self._end_line()
            Console(file=self.stream).print(summary_table(self.name, self.last_row))


def summary_table(name: str, row: dict) -> Table:
    """A two-column table of the last metrics row."""
    table = Table(title=f"{name}: epoch {row['epoch']}", show_header=False)
    shown = {
        "training loss (mean)": format_log10(row.get("log10_loss_mean"), 3),
        "training loss (sum)": format_log10(row.get("log10_loss_sum"), 3),
        "train accuracy": f"{100 * row['train_acc']:.2f}%",
        "test accuracy": "-" if row.get("test_acc") is None else f"{100 * row['test_acc']:.2f}%",
        "q_min": _number(row.get("q_min")),
        "normalized margin (rho^L)": _number(row.get("normalized_margin")),
        "normalized margin (layers)": _number(row.get("normalized_margin_layers")),
        "smoothed margin (rho^L)": _number(row.get("smoothed_margin")),
        "parameter norm": _number(row.get("param_norm")),
        "alpha": _number(row.get("alpha")),
        "learning rate": format_log10(row.get("log10_lr")),
        "rollbacks": str(row.get("rollbacks")),
        "wall time": f"{row.get('wall_time', 0.0):.1f} s",
    }
    for key, value in shown.items():
        table.add_row(key, value)
    return table
