"""One live line per run while it trains, then a summary table."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from marginlab.measure.trajectory import relative_drops
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


def margin_decreases(margins: Sequence[float]) -> tuple[str, str]:
    """How many logged epochs lowered the smoothed margin, and the largest relative decrease.

    Parameters
    ----------
    margins : sequence of float
        The smoothed margin of each logged epoch where it is defined, in order.

    Returns
    -------
    count, largest : str
        ``"K of N logged epochs"`` (each compared with the logged epoch before it) and the
        largest ``(m[t-1] - m[t]) / m[t-1]``, both ``"-"`` with fewer than two margins.

    Examples
    --------
    >>> margin_decreases([1.0, 2.0, 1.5, 1.5, 3.0])
    ('1 of 4 logged epochs', '0.25')
    >>> margin_decreases([1.0, 2.0, 3.0])
    ('0 of 2 logged epochs', '0')
    """
    if len(margins) < 2:
        return "-", "-"
    drops = relative_drops(margins)
    return f"{int((drops > 0).sum())} of {len(drops)} logged epochs", f"{drops.max():.2g}"


class Progress:
    """Shows the latest metrics row in place on a terminal, or periodically otherwise.

    Parameters
    ----------
    name : str
        The run's name, at the start of each line.
    enabled : bool
        Whether anything is printed.
    stream : file, optional
        Where to print (standard error by default).
    history : iterable of dict
        The rows logged before this session (a resumed run), for the summary's counts.
    """

    def __init__(
        self, name: str, enabled: bool = True, stream=None, history: Iterable[dict] = ()
    ) -> None:
        self.name = name
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.last_row: dict | None = None
        # the smoothed margin of every logged epoch where it is defined
        self.margins: list[float] = []
        self._last_print = 0.0
        self._width = 0
        for row in history:
            self._record(row)

    def _record(self, row: dict) -> None:
        self.last_row = row
        if row.get("smoothed_margin") is not None:
            self.margins.append(row["smoothed_margin"])

    def update(self, row: dict) -> None:
        self._record(row)
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
            table = summary_table(self.name, self.last_row, self.margins)
            Console(file=self.stream).print(table)


def summary_table(name: str, row: dict, margins: Sequence[float] = ()) -> Table:
    """A two-column table of the last metrics row, and of the smoothed margin's decreases
    over ``margins`` (see :func:`margin_decreases`)."""
    table = Table(title=f"{name}: epoch {row['epoch']}", show_header=False)
    decreases, largest = margin_decreases(margins)
    shown = {
        "training loss (mean)": format_log10(row.get("log10_loss_mean"), 3),
        "training loss (sum)": format_log10(row.get("log10_loss_sum"), 3),
        "train accuracy": f"{100 * row['train_acc']:.2f}%",
        "test accuracy": "-" if row.get("test_acc") is None else f"{100 * row['test_acc']:.2f}%",
        "q_min": _number(row.get("q_min")),
        "normalized margin (rho^L)": _number(row.get("normalized_margin")),
        "normalized margin (layers)": _number(row.get("normalized_margin_layers")),
        "smoothed margin (rho^L)": _number(row.get("smoothed_margin")),
        "smoothed margin decreases": decreases,
        "largest decrease (relative)": largest,
        "parameter norm": _number(row.get("param_norm")),
        "alpha": _number(row.get("alpha")),
        "learning rate": format_log10(row.get("log10_lr")),
        "rollbacks": str(row.get("rollbacks")),
        "wall time": f"{row.get('wall_time', 0.0):.1f} s",
    }
    for key, value in shown.items():
        table.add_row(key, value)
    return table
