"""A training run's progress: a bar with the remaining time, then a summary table.

The bar (see :class:`marginlab.progress.Bar`: rich in a terminal, tqdm in a notebook, a line
every few seconds in a log) goes from the initial loss to the run's target, or from epoch 0
to ``train.max_epochs``, whichever is nearer. The remaining time comes from the pace of the
last logged epochs: seconds per epoch, and decades of the loss per epoch; before there is a
pace, from the cost of an attempt timed before the run starts
(:func:`marginlab.training.estimate.seconds_per_attempt`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from rich.console import Console
from rich.table import Table

from marginlab.measure.margins import MARGIN_LABELS, PAPER_MARGIN, margin_label
from marginlab.measure.trajectory import relative_drops
from marginlab.numerics import format_log10
from marginlab.progress import Bar, cost_message, format_duration
from marginlab.training.estimate import EpochCost

# Logged rows over which the pace is measured, and how many it takes to announce it.
PACE_ROWS = 20
PACE_ROWS_TO_ANNOUNCE = 5
SHORTEN = "--set train.max_epochs=N, --set data.n_train=N, or a smaller model"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def progress_line(row: dict, target_log10_loss: float | None = None) -> str:
    """Format one metrics row as the text of the progress bar.

    The margin shown is the one the papers plot, ``q_min / prod_i ||W_i||^{k_i}`` (of each
    layer's norm), labelled so; ``q_min / rho^L`` where only that is known.

    Examples
    --------
    >>> print(progress_line({"epoch": 3, "log10_loss_mean": -881.5, "normalized_margin": 1e-13,
    ...     "normalized_margin_layers": 3e-8, "alpha": 0.5, "rollbacks": 2, "train_acc": 1.0},
    ...     target_log10_loss=-900))
    epoch 3 | loss 3.2e-882 (target 1e-900) | q_min/prod||W_i|| 3e-08 | acc 100.0% | ...
    """
    key = PAPER_MARGIN if row.get(PAPER_MARGIN) is not None else "normalized_margin"
    label, margin = MARGIN_LABELS[key], row.get(key)
    loss = format_log10(row["log10_loss_mean"])
    if target_log10_loss is not None:
        loss += f" (target 1e{target_log10_loss:g})"
    return (
        f"epoch {row['epoch']} | loss {loss} | {label} {_number(margin)} | "
        f"acc {100 * row['train_acc']:.1f}% | alpha {_number(row.get('alpha'))} | "
        f"rollbacks {row.get('rollbacks')}"
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
    """Shows a run's progress with the remaining time, and its summary at the end.

    Parameters
    ----------
    name : str
        The run's name, at the start of the bar.
    enabled : bool
        Whether anything is printed.
    stream : file, optional
        Where to print (standard error by default).
    history : iterable of dict
        The rows logged before this session (a resumed run), for the summary's counts.
    max_epochs, target_log10_loss : optional
        The run's stopping rules, for the bar and the remaining time.
    """

    def __init__(
        self,
        name: str,
        enabled: bool = True,
        stream=None,
        history: Iterable[dict] = (),
        max_epochs: int | None = None,
        target_log10_loss: float | None = None,
    ) -> None:
        self.name = name
        self.enabled = enabled
        self.max_epochs = max_epochs
        self.target = target_log10_loss
        self.last_row: dict | None = None
        self.first_loss: float | None = None
        # the smoothed margin of every logged epoch where it is defined
        self.margins: list[float] = []
        self.recent: deque[dict] = deque(maxlen=PACE_ROWS)
        self.seconds_per_epoch: float | None = None  # the estimate before there is a pace
        self.pace_announced = False
        for row in history:
            self._record(row)
        self.bar = Bar(name, total=1.0, enabled=enabled, stream=stream)
        self.stream = self.bar.stream

    def _record(self, row: dict) -> None:
        self.last_row = row
        if self.first_loss is None:
            self.first_loss = row.get("log10_loss_mean")
        self.recent.append(row)
        if row.get("smoothed_margin") is not None:
            self.margins.append(row["smoothed_margin"])

    def announce_cost(self, cost: Callable[[], EpochCost], epoch: int) -> None:
        """Estimate an epoch (``cost``, called only when shown) and print what the run
        will cost from ``epoch`` on: a warning when it exceeds an hour. A run with a target
        may end long before ``train.max_epochs``: its estimate comes once the loss falls
        (see :meth:`update`), and here only the cost of an epoch and the bound."""
        if not self.enabled or self.max_epochs is None:
            return
        estimate = cost()
        self.seconds_per_epoch = estimate.seconds
        epochs = max(self.max_epochs - epoch, 0)
        if self.target is None:
            self.message(
                cost_message(
                    f"this run ({self.name})",
                    epochs * estimate.seconds,
                    f"{estimate.describe()}; {epochs} epochs to train.max_epochs={self.max_epochs}",
                    SHORTEN,
                )
            )
            return
        self.message(
            f"marginlab: estimate: {estimate.describe()}; the run ends at the target loss "
            f"1e{self.target:g} or after {epochs} more epochs (at most about "
            f"{format_duration(epochs * estimate.seconds)}); the time to the target follows "
            "once the loss falls"
        )

    def _announce_pace(self) -> None:
        """Once the loss has fallen over a few logged epochs, print the time to the target."""
        if self.pace_announced or self.target is None or len(self.recent) < PACE_ROWS_TO_ANNOUNCE:
            return
        first, last = self.recent[0], self.last_row
        d_epoch = last["epoch"] - first["epoch"]
        slope = (last["log10_loss_mean"] - first["log10_loss_mean"]) / max(d_epoch, 1)
        left = self.remaining()
        if slope >= 0 or left is None:
            return
        self.pace_announced = True
        self.message(
            cost_message(
                f"this run ({self.name}) to its target",
                left,
                f"the loss falls {-slope:.3g} decades per epoch over the last {d_epoch} "
                f"epochs, from 1e{last['log10_loss_mean']:.0f} to the target 1e{self.target:g}",
                SHORTEN + " or a higher train.target_log10_loss",
            )
        )

    def fraction(self, row: dict) -> float:
        """How far the run is, from 0 to 1: epochs or decades, whichever is further."""
        done = 0.0
        if self.max_epochs:
            done = row["epoch"] / self.max_epochs
        loss, first = row.get("log10_loss_mean"), self.first_loss
        if self.target is not None and first is not None and loss is not None:
            if first > self.target and math.isfinite(loss):
                done = max(done, (first - loss) / (first - self.target))
        return min(max(done, 0.0), 1.0)

    def remaining(self) -> float | None:
        """Seconds left at the pace of the recent logged epochs (or the estimate)."""
        if self.last_row is None or self.max_epochs is None:
            return None
        last = self.last_row
        epochs_left = max(self.max_epochs - last["epoch"], 0)
        first = self.recent[0]
        d_epoch = last["epoch"] - first["epoch"]
        d_time = last.get("wall_time", 0.0) - first.get("wall_time", 0.0)
        per_epoch = d_time / d_epoch if d_epoch > 0 and d_time > 0 else self.seconds_per_epoch
        if d_epoch > 0 and self.target is not None:
            slope = (last["log10_loss_mean"] - first["log10_loss_mean"]) / d_epoch
            if slope < 0:
                epochs_left = min(
                    epochs_left, math.ceil((last["log10_loss_mean"] - self.target) / -slope)
                )
        return None if per_epoch is None else epochs_left * per_epoch

    def update(self, row: dict) -> None:
        self._record(row)
        if self.enabled:
            self._announce_pace()
            self.bar.update(
                self.fraction(row), progress_line(row, self.target), remaining=self.remaining()
            )

    def message(self, text: str) -> None:
        self.bar.message(text)

    def close(self) -> None:
        self.bar.close()
        if self.enabled and self.last_row is not None:
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
        **{
            margin_label(key): _number(row.get(key))
            for key in ("normalized_margin", "normalized_margin_layers", "smoothed_margin")
        },
        "smoothed margin decreases": decreases,
        "largest decrease (relative)": largest,
        "parameter norm rho = ||theta||": _number(row.get("param_norm")),
        "alpha": _number(row.get("alpha")),
        "learning rate": format_log10(row.get("log10_lr")),
        "rollbacks": str(row.get("rollbacks")),
        "wall time": f"{row.get('wall_time', 0.0):.1f} s",
    }
    for key, value in shown.items():
        table.add_row(key, value)
    return table
