"""Panels of a run's training metrics: loss, margins, norms and the step-size schedule.

Each ``plot_*`` draws on a matplotlib ``Axes`` from one run's metrics (a DataFrame with the
columns of ``metrics.jsonl``, such as :attr:`marginlab.runs.run.Run.metrics`) or several
runs' as ``{label: metrics}``, overlaid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from marginlab.measure.trajectory import threshold_row
from marginlab.plots.style import (
    COLORS,
    THRESHOLD_STYLE,
    draw,
    finish,
    log_y,
    series_legend,
    series_style,
)

Runs = pd.DataFrame | Mapping[str, pd.DataFrame]
"""One run's table, or several runs' tables keyed by their label."""

X_LABELS = {
    "epoch": "epoch (accepted full passes)",
    "log10_accumulated_lr": r"accumulated learning rate $T$ (log$_{10}$)",
}
# Each normalization of the margins: its columns (normalized: q_min, smoothed: l^-1(L), over
# the divisor) and the divisor, named on the y axis. Lyu & Li plot the margins over the
# product of the layer norms.
MARGIN_KEYS = {
    "rho": (
        {"normalized_margin": "normalized", "smoothed_margin": "smoothed"},
        r"$\rho^L = \|\theta\|^L$",
    ),
    "layers": (
        {"normalized_margin_layers": "normalized", "smoothed_margin_layers": "smoothed"},
        r"$\Pi_i \|w_i\|^{k_i}$",
    ),
}
PAPER_NOTE = {"rho": "", "layers": " (Lyu & Li plot this)"}
SCHEDULE_PANELS = {
    "alpha": ("step factor alpha (loss-based: lr = alpha / L)", True),
    "log10_lr": ("learning rate (log$_{10}$)", False),
    "rollbacks": ("rollbacks (cumulative count)", False),
}
THRESHOLD_LABEL = "sum of losses < l(0)"


def runs_of(data: Runs) -> list[tuple[str | None, pd.DataFrame]]:
    """``[(label, table)]``: one unlabelled run, or several labelled ones."""
    if isinstance(data, pd.DataFrame):
        return [(None, data)]
    return list(data.items())


def column(table: pd.DataFrame, key: str) -> np.ndarray:
    """A metrics column as floats, nulls as nan; ``"layer_norms/1"`` picks item 1 of a list
    column (the naming of the TensorBoard tags)."""
    name, _, index = key.partition("/")
    if name not in table:
        return np.full(len(table), np.nan)
    values = table[name]
    if index:
        i = int(index)
        values = values.map(lambda v: v[i] if isinstance(v, list) and len(v) > i else None)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _label(run_label: str | None, series_label: str | None) -> str:
    return ": ".join(part for part in (run_label, series_label) if part) or "_series"


def plot_series(
    ax: Axes, data: Runs, x: str, series: Mapping[str, str], *, log: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Draw ``series`` (column -> name) of every run against column ``x``; returns the
    legend entries of the series drawn."""
    runs = runs_of(data)
    overlay = len(runs) > 1
    drawn: dict[str, dict[str, Any]] = {}
    for r, (run_label, table) in enumerate(runs):
        xs = column(table, x)
        for s, (key, name) in enumerate(series.items()):
            style = series_style(r, s, overlay)
            label = _label(run_label, name)
            if draw(ax, xs, column(table, key), log=log, label=label, **style) is not None:
                drawn[name] = (
                    series_style(0, s, overlay=False)
                    if not overlay
                    else {
                        "color": "0.2",
                        "linestyle": style["linestyle"],
                    }
                )
    return list(drawn.items()) if len(series) > 1 else []


def mark_threshold(ax: Axes, data: Runs, x: str) -> list[tuple[str, dict[str, Any]]]:
    """A dotted vertical line per run where its summed loss fell below ``l(0)``."""
    runs = runs_of(data)
    entries = []
    for r, (run_label, metrics) in enumerate(runs):
        row = threshold_row(metrics)
        if row is None:
            continue
        epoch = int(metrics["epoch"].iloc[row])
        style = {"color": COLORS[r % len(COLORS)], "linestyle": THRESHOLD_STYLE, "linewidth": 0.9}
        ax.axvline(column(metrics, x)[row], label=_label(run_label, f"l(0) at {epoch}"), **style)
        text = THRESHOLD_LABEL if len(runs) > 1 else f"{THRESHOLD_LABEL}, epoch {epoch}"
        entries = [(text, {**style, "color": "0.2"})]
    return entries


def plot_loss(ax: Axes, data: Runs, x: str = "epoch") -> None:
    """Training (and test) loss as log10 of the mean, so 1e-882 stays readable.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    data : DataFrame or mapping of label to DataFrame
        Metrics of one run, or of several runs to overlay.
    x : {"epoch", "log10_accumulated_lr"}
        The horizontal axis: epochs, or log10 of the accumulated learning rate T.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> plot_loss(ax, pd.DataFrame({"epoch": [0, 10], "log10_loss_mean": [-0.2, -881.5]}))
    >>> ax.lines[0].get_ydata().tolist()
    [-0.2, -881.5]
    """
    entries = plot_series(ax, data, x, {"log10_loss_mean": "train", "log10_test_loss_mean": "test"})
    entries += mark_threshold(ax, data, x)
    finish(ax, X_LABELS[x], "loss, mean over samples (log$_{10}$)")
    series_legend(ax, entries)


def plot_margins(ax: Axes, data: Runs, normalization: str = "rho") -> None:
    """Normalized ``q_min / norm`` and smoothed ``l^-1(L) / norm`` margins against epochs.

    The epoch where the summed loss fell below ``l(0)`` (from which the smoothed margin
    is defined) is marked by a dotted vertical line.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    data : DataFrame or mapping of label to DataFrame
        Metrics of one run, or of several runs to overlay.
    normalization : {"rho", "layers"}
        Divide by ``rho^L`` (``normalized_margin``) or by ``prod_i ||w_i||^{k_i}``
        (``normalized_margin_layers``).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> metrics = pd.DataFrame({"epoch": [0, 5], "normalized_margin": [0.1, 0.2],
    ...                         "smoothed_margin": [None, 0.15]})
    >>> plot_margins(ax, metrics)
    >>> [line.get_label() for line in ax.lines]
    ['normalized', 'smoothed', 'l(0) at 5']
    >>> print(ax.get_ylabel())
    margin / $\\rho^L = \\|\\theta\\|^L$
    """
    series, norm = MARGIN_KEYS[normalization]
    entries = plot_series(ax, data, "epoch", series)
    entries += mark_threshold(ax, data, "epoch")
    finish(
        ax,
        X_LABELS["epoch"],
        f"margin / {norm}",
        f"margins normalized by {norm}{PAPER_NOTE[normalization]}",
    )
    series_legend(ax, entries)


def plot_norms(ax: Axes, data: Runs, per_layer: bool = False) -> None:
    """The parameter norm ``rho = ||theta||``, or each layer's norm ``||w_i||`` (log scale).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> plot_norms(ax, pd.DataFrame({"epoch": [0, 1], "layer_norms": [[1, 2], [3, 4]]}), True)
    >>> [line.get_ydata().tolist() for line in ax.lines]
    [[1.0, 3.0], [2.0, 4.0]]
    """
    if per_layer:
        depth = max(
            (
                len(v)
                for _, t in runs_of(data)
                if "layer_norms" in t
                for v in t["layer_norms"]
                if isinstance(v, list)
            ),
            default=0,
        )
        series = {f"layer_norms/{i}": f"layer {i + 1}" for i in range(depth)}
        entries = plot_series(ax, data, "epoch", series, log=True)
        log_y(ax)
        finish(ax, X_LABELS["epoch"], r"layer norm $\|w_i\|$ (Euclidean)")
    else:
        entries = plot_series(ax, data, "epoch", {"param_norm": "rho"}, log=True)
        log_y(ax)
        finish(ax, X_LABELS["epoch"], r"parameter norm $\rho = \|\theta\|$ (Euclidean)")
    series_legend(ax, entries)


def plot_schedule(ax: Axes, data: Runs, key: str = "alpha") -> None:
    """The step-size schedule: ``alpha`` (log scale), ``log10_lr`` or cumulative ``rollbacks``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> plot_schedule(ax, pd.DataFrame({"epoch": [0, 1], "rollbacks": [0, 3]}), "rollbacks")
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 3.0]
    """
    ylabel, log_scale = SCHEDULE_PANELS[key]
    plot_series(ax, data, "epoch", {key: key}, log=log_scale)
    if log_scale:
        log_y(ax)
    finish(ax, X_LABELS["epoch"], ylabel)
