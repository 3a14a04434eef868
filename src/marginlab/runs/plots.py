"""Publication figures of runs: loss, margins, norms, step size, KKT, robustness, boundary.

Every ``plot_*`` function draws one panel on a matplotlib ``Axes``. Metric panels take one
run's metrics (a DataFrame such as :attr:`marginlab.runs.run.Run.metrics`) or several runs
as ``{label: metrics}``, overlaid with a legend. The run sets a line's colour (and, when
several runs are overlaid, its marker) and the quantity sets its line style, so every
figure stays readable when printed in greyscale.

:func:`figure` assembles the panels of one kind (see :data:`FIGURES`) for run directories,
:func:`plot` saves it as PNG, PDF or SVG, and :func:`plot_training` writes the overview
``RUN_DIR/training.png`` after training. Figures are built on
:class:`matplotlib.figure.Figure`, not pyplot, so importing this module leaves the caller's
backend and open figures alone.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from marginlab.measure.trajectory import threshold_row
from marginlab.runs.run import Run
from marginlab.runs.store import no_link

Runs = pd.DataFrame | Mapping[str, pd.DataFrame]
"""One run's table, or several runs' tables keyed by their legend label."""

STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.5,
    "legend.frameon": False,
    # TrueType fonts in PDFs keep the text editable in journal and vector-graphics tools.
    "pdf.fonttype": 42,
}
PANEL_SIZE = (3.4, 2.6)  # inches: one journal column
MAX_COLUMNS = 3
RASTER_DPI = 200
FORMATS = (".png", ".pdf", ".svg")

# Colour-blind-safe colours (Okabe-Ito) led by black, markers and dash patterns that stay
# distinct without colour.
RUN_COLORS = ("black", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)))
THRESHOLD_STYLE = (0, (1, 2))
LEGEND_INSIDE_MAX = 3
# Markers of overlaid runs every tenth of the axes diagonal: evenly spread on screen even
# where the data points crowd (e.g. against log10 T).
MARKER_SPACING = 0.1

X_LABELS = {
    "epoch": "epoch",
    "log10_accumulated_lr": "log10 accumulated learning rate  (log10 T)",
    "log10_loss": "log10 training loss (mean)",
    "eps": "perturbation size  epsilon",
}
MARGIN_KEYS = {
    "rho": ({"normalized_margin": "normalized", "smoothed_margin": "smoothed"}, r"$\rho^L$"),
    "layers": (
        {"normalized_margin_layers": "normalized", "smoothed_margin_layers": "smoothed"},
        r"$\Pi_i \|w_i\|^{k_i}$",
    ),
}

FIGURES: dict[str, str] = {
    "training": "log10 training loss and both normalizations of the margins against epochs",
    "loss": "log10 training (and test) loss against epochs and against log10 accumulated "
    "learning rate",
    "margins": "normalized and smoothed margins against epochs in both normalizations, with "
    "the epoch where the summed loss fell below l(0)",
    "norms": "parameter norm and per-layer norms against epochs",
    "lr": "alpha, log10 learning rate and cumulative rollbacks against epochs",
    "kkt": "KKT epsilon and delta against the training loss (kkt.json or kkt_* metrics)",
    "robustness": "robust accuracy against epsilon, one curve per checkpoint (robustness-*.json)",
    "boundary": "decision boundary and training points (2-d inputs)",
}
"""Figure kinds, as ``marginlab plot --what`` names them."""


class FigureUnavailable(ValueError):
    """The runs hold nothing to draw for this figure (e.g. no KKT results yet)."""


# data access ------------------------------------------------------------------------------
def _runs(data: Runs) -> list[tuple[str | None, pd.DataFrame]]:
    if isinstance(data, pd.DataFrame):
        return [(None, data)]
    return list(data.items())


def _column(table: pd.DataFrame, key: str) -> np.ndarray:
    """Return a column as floats, nulls as nan; ``"layer_norms/1"`` picks item 1 of a list
    column (the naming of the TensorBoard tags)."""
    name, _, index = key.partition("/")
    if name not in table:
        return np.full(len(table), np.nan)
    values = table[name]
    if index:
        i = int(index)
        values = values.map(lambda v: v[i] if isinstance(v, list) and len(v) > i else None)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


# drawing ----------------------------------------------------------------------------------
def _label(run_label: str | None, series_label: str | None) -> str | None:
    return ": ".join(part for part in (run_label, series_label) if part) or None


def _draw(
    ax: Axes,
    x: Sequence[float],
    y: Sequence[float],
    *,
    run: int,
    series: int,
    overlay: bool,
    label: str | None,
    **overrides: Any,
) -> Line2D | None:
    """Draw one series: the run picks colour and marker, the series the line style.

    All-null series are skipped so that a quantity a run does not have leaves no empty
    legend entry. Markers appear only in overlays, where they tell the runs apart in
    greyscale; ``overrides`` replace any of these choices.
    """
    y = np.asarray(y, dtype=float)
    if np.isnan(y).all():
        return None
    style: dict[str, Any] = {
        "color": RUN_COLORS[run % len(RUN_COLORS)],
        "linestyle": LINE_STYLES[series % len(LINE_STYLES)],
        "label": label,
    }
    if overlay:
        style["marker"] = RUN_MARKERS[run % len(RUN_MARKERS)]
        style["markevery"] = MARKER_SPACING
    style.update(overrides)
    (line,) = ax.plot(x, y, **style)
    return line


def _plot_series(ax: Axes, data: Runs, x: str, series: Mapping[str, str]) -> None:
    """Draw ``series`` (column -> legend name) of every run against column ``x``."""
    runs = _runs(data)
    overlay = len(runs) > 1
    for r, (run_label, table) in enumerate(runs):
        xs = _column(table, x)
        for s, (key, name) in enumerate(series.items()):
            label = _label(run_label if overlay else None, name if len(series) > 1 else None)
            _draw(ax, xs, _column(table, key), run=r, series=s, overlay=overlay, label=label)


def _mark_threshold(ax: Axes, data: Runs, x: str) -> None:
    """A dotted vertical line per run where its summed loss fell below ``l(0)``."""
    runs = _runs(data)
    for r, (run_label, metrics) in enumerate(runs):
        row = threshold_row(metrics)
        if row is None:
            continue
        epoch = int(metrics["epoch"].iloc[row])
        ax.axvline(
            _column(metrics, x)[row],
            color=RUN_COLORS[r % len(RUN_COLORS)],
            linestyle=THRESHOLD_STYLE,
            linewidth=0.9,
            label=_label(
                run_label if len(runs) > 1 else None, f"sum of losses < l(0), epoch {epoch}"
            ),
        )


def _log_y(ax: Axes) -> None:
    """Log-scale the y axis of a panel with data; minor ticks stay unlabelled (within one
    decade matplotlib would label them all and crowd the axis)."""
    if ax.lines:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())


def _finish(ax: Axes, x: str, ylabel: str, title: str | None = None, **legend: Any) -> None:
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if not ax.lines and not ax.collections:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    entries = len(ax.get_legend_handles_labels()[0])
    if entries > LEGEND_INSIDE_MAX:
        # A long legend (overlays) goes under the panel, where it hides no curve.
        legend = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncols": 2, **legend}
    if entries:
        ax.legend(**legend)


# panels -----------------------------------------------------------------------------------
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
    >>> ax = Figure().subplots()
    >>> plot_loss(ax, pd.DataFrame({"epoch": [0, 10], "log10_loss_mean": [-0.2, -881.5]}))
    >>> ax.lines[0].get_ydata().tolist()
    [-0.2, -881.5]
    """
    _plot_series(ax, data, x, {"log10_loss_mean": "train", "log10_test_loss_mean": "test"})
    _mark_threshold(ax, data, x)
    _finish(ax, x, "log10 loss (mean)")


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
    >>> ax = Figure().subplots()
    >>> metrics = pd.DataFrame({"epoch": [0, 5], "normalized_margin": [0.1, 0.2],
    ...                         "smoothed_margin": [None, 0.15]})
    >>> plot_margins(ax, metrics)
    >>> [line.get_label() for line in ax.lines]
    ['normalized', 'smoothed', 'sum of losses < l(0), epoch 5']
    """
    series, norm = MARGIN_KEYS[normalization]
    _plot_series(ax, data, "epoch", series)
    _mark_threshold(ax, data, "epoch")
    _finish(ax, "epoch", "margin", f"margins normalized by {norm}")


def plot_norms(ax: Axes, data: Runs, per_layer: bool = False) -> None:
    """The parameter norm ``rho = ||theta||``, or each layer's norm ``||w_i||``.

    Examples
    --------
    >>> ax = Figure().subplots()
    >>> plot_norms(ax, pd.DataFrame({"epoch": [0, 1], "layer_norms": [[1, 2], [3, 4]]}), True)
    >>> [line.get_ydata().tolist() for line in ax.lines]
    [[1.0, 3.0], [2.0, 4.0]]
    """
    if per_layer:
        depth = max(
            (
                len(v)
                for _, t in _runs(data)
                if "layer_norms" in t
                for v in t["layer_norms"]
                if isinstance(v, list)
            ),
            default=0,
        )
        series = {f"layer_norms/{i}": f"layer {i + 1}" for i in range(depth)}
        _plot_series(ax, data, "epoch", series)
        _finish(ax, "epoch", r"layer norm  $\|w_i\|$")
    else:
        _plot_series(ax, data, "epoch", {"param_norm": "rho"})
        _finish(ax, "epoch", r"parameter norm  $\rho = \|\theta\|$")


SCHEDULE_PANELS = {
    "alpha": ("alpha (loss-based step factor)", True),
    "log10_lr": ("log10 learning rate", False),
    "rollbacks": ("rollbacks (cumulative)", False),
}


def plot_schedule(ax: Axes, data: Runs, key: str = "alpha") -> None:
    """The step-size schedule: ``alpha`` (log scale), ``log10_lr`` or cumulative ``rollbacks``.

    Examples
    --------
    >>> ax = Figure().subplots()
    >>> plot_schedule(ax, pd.DataFrame({"epoch": [0, 1], "rollbacks": [0, 3]}), "rollbacks")
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 3.0]
    """
    ylabel, log_scale = SCHEDULE_PANELS[key]
    _plot_series(ax, data, "epoch", {key: key})
    if log_scale:
        _log_y(ax)
    _finish(ax, "epoch", ylabel)


def plot_kkt(ax: Axes, data: Runs, quantity: str = "epsilon") -> None:
    """KKT ``epsilon`` or ``delta`` against the training loss, one line per certificate.

    ``data`` holds tables from :func:`kkt_table` (columns ``log10_loss``, ``epsilon``,
    ``delta``, ``certificate``). The loss axis runs from right to left so that training
    time goes left to right.

    Examples
    --------
    >>> ax = Figure().subplots()
    >>> table = pd.DataFrame({"log10_loss": [-5, -50], "epsilon": [0.1, 0.01],
    ...                       "delta": [0.2, 0.02], "certificate": ["loss weights"] * 2})
    >>> plot_kkt(ax, table, "delta")
    >>> ax.lines[0].get_ydata().tolist()
    [0.2, 0.02]
    """
    grouped = {
        label: dict(list(table.groupby("certificate", sort=False))) for label, table in _runs(data)
    }
    names = list(dict.fromkeys(name for groups in grouped.values() for name in groups))
    overlay = len(grouped) > 1
    for r, (run_label, groups) in enumerate(grouped.items()):
        for name, table in groups.items():
            s = names.index(name)
            label = _label(run_label if overlay else None, name if len(names) > 1 else None)
            _draw(
                ax,
                _column(table, "log10_loss"),
                _column(table, quantity),
                run=r,
                series=s,
                overlay=True,  # few points: markers show where the certificates were taken
                label=label,
            )
    if ax.lines:
        ax.invert_xaxis()
    _log_y(ax)
    _finish(ax, "log10_loss", "relative epsilon" if quantity == "epsilon" else "delta")


def plot_robustness(ax: Axes, data: Runs, title: str | None = None) -> None:
    """Robust accuracy against epsilon, one curve per checkpoint (Lyu & Li, Fig. 8).

    ``data`` holds tables from :func:`robustness_table`. Later checkpoints are darker
    (a colour map of monotone lightness, so the order survives greyscale); overlaid runs
    differ by marker.

    Examples
    --------
    >>> ax = Figure().subplots()
    >>> table = pd.DataFrame({"checkpoint": ["last", "last"], "epoch": [9, 9],
    ...                       "eps": [0.0, 0.5], "robust_accuracy": [1.0, 0.4]})
    >>> plot_robustness(ax, table)
    >>> ax.lines[0].get_xydata().tolist()
    [[0.0, 1.0], [0.5, 0.4]]
    """
    runs = _runs(data)
    colors = matplotlib.colormaps["viridis"]
    for r, (run_label, table) in enumerate(runs):
        checkpoints = list(table.groupby("checkpoint", sort=False))
        for s, (name, curve) in enumerate(checkpoints):
            curve = curve.sort_values("eps")
            epoch = curve["epoch"].iloc[0]
            name = f"{name} (epoch {epoch})" if pd.notna(epoch) else str(name)
            _draw(
                ax,
                curve["eps"].to_numpy(float),
                curve["robust_accuracy"].to_numpy(float),
                run=r,
                series=s,
                overlay=True,
                label=_label(run_label if len(runs) > 1 else None, name),
                color=colors(0.85 * (1 - s / max(1, len(checkpoints) - 1))),
                markevery=1,
            )
    ax.set_ylim(-0.02, 1.02)
    _finish(ax, "eps", "robust accuracy", title)


def plot_boundary(
    ax: Axes, run: Run, checkpoint: str | int | float = "last", grid: int = 200
) -> None:
    """Decision regions and boundary of a model on 2-d inputs, with the training points.

    The boundary of a binary model is the zero level set of its score (the single output,
    or the difference of two outputs), traced on a ``grid x grid`` evaluation; with more
    classes it lies between the predicted-class regions.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    run : Run
        A run whose inputs are 2-d vectors.
    checkpoint : "last", int or float
        Which weights (see :meth:`marginlab.runs.run.Run.checkpoint`).
    grid : int
        Evaluation points per axis.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import load_run, train
    >>> config = {"data": {"name": "xor"}, "loss": "logistic", "train": {"max_epochs": 2},
    ...           "model": {"kind": "two_layer", "width": 8}}
    >>> run = load_run(train(config, tempfile.mkdtemp() + "/r", progress=False))
    >>> ax = Figure().subplots()
    >>> plot_boundary(ax, run)
    >>> len(ax.collections[-1].get_offsets())  # the two XOR points of class 1
    2
    """
    x, y = run.load_data("train")
    if x.ndim != 2 or x.shape[1] != 2:
        raise FigureUnavailable(
            f"{run.path}: the decision boundary needs 2-d inputs; this run's are "
            f"{tuple(x.shape[1:])}"
        )
    chosen = run.checkpoint(checkpoint)
    model = run.load_model(checkpoint)
    points = x.numpy()
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * np.maximum(high - low, 1e-3)
    g0, g1 = np.meshgrid(*(np.linspace(low[i] - pad[i], high[i] + pad[i], grid) for i in (0, 1)))
    inputs = torch.as_tensor(np.column_stack([g0.ravel(), g1.ravel()]), dtype=x.dtype)
    with torch.no_grad():
        outputs = model(inputs).double()
    n_classes = max(2, outputs.shape[1])
    if outputs.shape[1] <= 2:
        score = outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, 1] - outputs[:, 0]
        predicted, levels = (score > 0).long(), [0.0]
    else:
        predicted = outputs.argmax(dim=1)
        score, levels = predicted.double(), list(np.arange(n_classes - 1) + 0.5)
    shape = g0.shape
    ax.contourf(
        g0,
        g1,
        predicted.reshape(shape).numpy(),
        levels=np.arange(n_classes + 1) - 0.5,
        cmap="Greys",
        vmin=-0.5,
        vmax=2.5 * n_classes,  # keep every region light so the points stay visible
    )
    ax.contour(g0, g1, score.reshape(shape).numpy(), levels=levels, colors="black", linewidths=1.2)
    labels = y.numpy()
    for c in range(n_classes):
        mine = points[labels == c]
        ax.scatter(
            mine[:, 0],
            mine[:, 1],
            s=18,
            marker=RUN_MARKERS[c % len(RUN_MARKERS)],
            facecolors="white" if c % 2 == 0 else "black",
            edgecolors="black",
            linewidths=0.8,
            label=f"class {c}",
            zorder=3,
        )
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    title = f"{run.config.get('name', run.path.name)}, epoch {chosen.epoch}"
    # The legend goes beside the square plot, where it hides no points.
    _finish(ax, "x1", "x2", title, loc="upper left", bbox_to_anchor=(1.0, 1.0))


# diagnostics and robustness files ---------------------------------------------------------
def _rows(payload: Any) -> list[dict]:
    """The list of row objects of a result file: the payload itself or its first list of
    objects (under "rows", "table", "checkpoints", ...: the writers' key may change)."""
    if isinstance(payload, list):
        return [row for row in payload if isinstance(row, dict)]
    if isinstance(payload, dict):
        for value in payload.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return value
    return []


def _first(row: Mapping[str, Any], keys: Iterable[str]) -> Any:
    return next((row[k] for k in keys if row.get(k) is not None), None)


def _loss(row: Mapping[str, Any]) -> float | None:
    """The row's log10 training loss, under whichever ``log10_loss*`` key it has."""
    return next((v for k, v in row.items() if k.startswith("log10_loss")), None)


EPSILON_KEYS = ("epsilon_rel", "eps_rel", "relative_epsilon", "epsilon", "eps")
# tau first: a best certificate is named by its tolerance, the loss-weight one (tau null)
# by its method.
CERTIFICATE_KEYS = ("tau", "certificate", "method")


def _certificate_rows(payload: Any) -> list[dict]:
    """One flat row per certificate. A checkpoint's row may hold its certificates as a list
    (one per tolerance) or as single objects (the loss-weight certificate); each becomes a
    row with the checkpoint's scalars (epoch, loss)."""
    flat = []
    for row in _rows(payload):
        scalars = {k: v for k, v in row.items() if not isinstance(v, (list, dict))}
        children = [
            child
            for value in row.values()
            for child in (value if isinstance(value, list) else [value])
            if isinstance(child, dict) and _first(child, EPSILON_KEYS) is not None
        ]
        flat += [{**scalars, **child} for child in children] or [scalars]
    return flat


def _certificate(row: Mapping[str, Any]) -> str:
    """A certificate's legend name: its tolerance, else its multiplier choice or method."""
    for key in CERTIFICATE_KEYS:
        if row.get(key) is not None:
            return f"tau={row[key]}" if key == "tau" else str(row[key])
    return "certificate"


def kkt_table(run: Run) -> pd.DataFrame | None:
    """KKT certificates of a run: ``kkt.json`` (``marginlab kkt``), else ``kkt_*`` metrics.

    Returns
    -------
    DataFrame or None
        Columns ``log10_loss``, ``epsilon`` (relative), ``delta`` and ``certificate`` (the
        activity tolerance or the multiplier choice); None when the run has no KKT results.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.runs.store import RunStore
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.write_config({"name": "r"})
    >>> _ = store.write_json("kkt.json", [{"epoch": 9, "log10_loss_mean": -5.0,
    ...                                    "epsilon_rel": 0.1, "delta": 0.3}])
    >>> kkt_table(Run(store.path))[["log10_loss", "epsilon", "delta"]].values.tolist()
    [[-5.0, 0.1, 0.3]]
    """
    metrics = run.metrics
    path = run.path / "kkt.json"
    if path.exists():
        # A row without its loss is placed by its epoch's logged loss.
        logged = dict(
            zip(metrics.get("epoch", []), metrics.get("log10_loss_mean", []), strict=True)
        )
        records = [
            {
                "log10_loss": _loss(row)
                if _loss(row) is not None
                else logged.get(row.get("epoch")),
                "epsilon": _first(row, EPSILON_KEYS),
                "delta": row.get("delta"),
                "certificate": _certificate(row),
            }
            for row in _certificate_rows(json.loads(path.read_text(encoding="utf-8")))
        ]
    else:
        eps_key = next((f"kkt_{k}" for k in EPSILON_KEYS if f"kkt_{k}" in metrics), None)
        if eps_key is None:
            return None
        records = [
            {
                "log10_loss": row.get("log10_loss_mean"),
                "epsilon": row.get(eps_key),
                "delta": row.get("kkt_delta"),
                "certificate": "observer",
            }
            for row in metrics.to_dict("records")
        ]
    table = pd.DataFrame(records, columns=["log10_loss", "epsilon", "delta", "certificate"])
    table = table.dropna(subset=["log10_loss"]).dropna(subset=["epsilon", "delta"], how="all")
    return table if len(table) else None


ACCURACY_KEYS = ("robust_accuracy", "robust_acc")
EPS_LIST_KEYS = ("eps", "epsilons", "epsilon")
# Flat columns such as "robust_acc@0.5", "robust_accuracy_eps=0.5" or "acc_0.25".
_FLAT_ACCURACY = re.compile(r"acc\w*?[@_=:\s]+(?:eps\w*?[@_=:\s]*)?([-+]?\d[\d.]*(?:e[-+]?\d+)?)$")


def _accuracy_curve(
    row: Mapping[str, Any], default_eps: Sequence[float]
) -> list[tuple[float, float]]:
    """(eps, robust accuracy) pairs of one checkpoint row, in any of the layouts writers use:
    a mapping eps -> accuracy, a list aligned with an eps list, or one column per eps."""
    values = _first(row, ACCURACY_KEYS)
    if isinstance(values, Mapping):
        return [(float(e), float(a)) for e, a in values.items() if a is not None]
    if isinstance(values, list):
        eps = _first(row, EPS_LIST_KEYS) or default_eps
        if isinstance(eps, list) and len(eps) == len(values):
            return [(float(e), float(a)) for e, a in zip(eps, values, strict=True) if a is not None]
    pairs = []
    for key, value in row.items():
        match = _FLAT_ACCURACY.search(key)
        if match and isinstance(value, (int, float)):
            pairs.append((float(match.group(1)), float(value)))
    return pairs


def robustness_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``robustness-<norm>-<attack>-<split>.json`` (``marginlab attack``) in long form.

    Returns
    -------
    DataFrame
        One row per checkpoint and epsilon: ``checkpoint``, ``epoch``, ``log10_loss``,
        ``eps``, ``robust_accuracy``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "robustness-l2-cw-train.json"
    >>> _ = path.write_text(json.dumps({"eps": [0.0, 1.0], "rows": [
    ...     {"checkpoint": "last", "epoch": 9, "robust_accuracy": [1.0, 0.5]}]}))
    >>> robustness_table(path)[["eps", "robust_accuracy"]].values.tolist()
    [[0.0, 1.0], [1.0, 0.5]]
    """
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    default_eps = _first(payload, EPS_LIST_KEYS) if isinstance(payload, dict) else None
    records = []
    for row in _rows(payload):
        for eps, accuracy in _accuracy_curve(row, default_eps or []):
            records.append(
                {
                    "checkpoint": str(_first(row, ("checkpoint", "label", "file", "epoch"))),
                    "epoch": row.get("epoch"),
                    "log10_loss": _loss(row),
                    "eps": eps,
                    "robust_accuracy": accuracy,
                }
            )
    return pd.DataFrame(
        records, columns=["checkpoint", "epoch", "log10_loss", "eps", "robust_accuracy"]
    )


def robustness_tables(runs: Mapping[str, Run]) -> dict[str, dict[str, pd.DataFrame]]:
    """``{"l2 cw train": {run label: table}}`` for every robustness file of the runs."""
    found: dict[str, dict[str, pd.DataFrame]] = {}
    for label, run in runs.items():
        for path in sorted(run.path.glob("robustness-*.json")):
            table = robustness_table(path)
            if len(table):
                setting = path.stem.removeprefix("robustness-").replace("-", " ")
                found.setdefault(setting, {})[label] = table
    return found


# figures ----------------------------------------------------------------------------------
Panel = Callable[[Axes], None]


def _run_dirs(path: str | os.PathLike) -> list[Path]:
    """``path`` itself, or for a sweep (or ``--replicas``) directory the runs in it, in the
    order of its ``summary.csv``."""
    path = Path(path)
    if (path / "config.yaml").exists() or not path.is_dir():
        return [path]
    inner = sorted(child for child in path.iterdir() if (child / "config.yaml").exists())
    if (path / "summary.csv").exists():
        order = {name: i for i, name in enumerate(pd.read_csv(path / "summary.csv")["trial"])}
        inner.sort(key=lambda child: order.get(child.name, len(order)))
    return inner or [path]


def open_runs(run_dirs: Iterable[str | os.PathLike | Run]) -> dict[str, Run]:
    """Open run directories, keyed by a legend label: the run's name, or its directory
    when names repeat. A sweep directory stands for the runs in it.

    Examples
    --------
    >>> open_runs([])
    {}
    """
    runs: list[Run] = []
    for r in run_dirs:
        runs.extend([r] if isinstance(r, Run) else [Run(path) for path in _run_dirs(r)])
    names = [str(r.config.get("name") or r.path.name) for r in runs]
    if len(set(names)) < len(names):
        names = [r.path.name for r in runs]
    if len(set(names)) < len(names):
        names = [str(r.path) for r in runs]
    return dict(zip(names, runs, strict=True))


def _panels(what: str, runs: Mapping[str, Run]) -> list[Panel]:
    """The panels of figure ``what``; raises :class:`FigureUnavailable` when there are none."""
    if what not in FIGURES:
        raise ValueError(f"--what: {what!r} is not a figure; expected one of {', '.join(FIGURES)}")
    if what in ("kkt", "robustness", "boundary"):
        return _result_panels(what, runs)
    metrics = {label: run.metrics for label, run in runs.items()}
    if any(table.empty for table in metrics.values()):
        empty = [str(run.path) for label, run in runs.items() if metrics[label].empty]
        raise FigureUnavailable(f"{', '.join(empty)}: no metrics to plot yet")
    data: Runs = next(iter(metrics.values())) if len(metrics) == 1 else metrics
    margins = [partial(plot_margins, data=data, normalization=n) for n in MARGIN_KEYS]
    return {
        "training": [partial(plot_loss, data=data), *margins],
        "loss": [
            partial(plot_loss, data=data),
            partial(plot_loss, data=data, x="log10_accumulated_lr"),
        ],
        "margins": margins,
        "norms": [partial(plot_norms, data=data), partial(plot_norms, data=data, per_layer=True)],
        "lr": [partial(plot_schedule, data=data, key=key) for key in SCHEDULE_PANELS],
    }[what]


def _result_panels(what: str, runs: Mapping[str, Run]) -> list[Panel]:
    """Panels of results kept beside the metrics: KKT, robustness, decision boundary."""
    if what == "kkt":
        tables = {label: t for label, run in runs.items() if (t := kkt_table(run)) is not None}
        if not tables:
            raise FigureUnavailable("no KKT results in these runs (run `marginlab kkt RUN_DIR`)")
        data: Runs = next(iter(tables.values())) if len(runs) == 1 else tables
        return [partial(plot_kkt, data=data, quantity=q) for q in ("epsilon", "delta")]
    if what == "robustness":
        settings = robustness_tables(runs)
        if not settings:
            raise FigureUnavailable(
                "no robustness-*.json in these runs (run `marginlab attack RUN_DIR`)"
            )
        return [
            partial(
                plot_robustness,
                data=next(iter(tables.values())) if len(runs) == 1 else tables,
                title=setting,
            )
            for setting, tables in settings.items()
        ]
    planar = [run for run in runs.values() if _input_dims(run) == 2]
    if not planar:
        raise FigureUnavailable("the decision boundary needs runs with 2-d inputs")
    return [partial(plot_boundary, run=run) for run in planar]


def _input_dims(run: Run) -> int | None:
    """Input dimension of a vector data set (None for images).

    The configuration does not say it (an MLP flattens images), so the data is loaded.
    """
    x, _ = run.load_data("train")
    return x.shape[1] if x.ndim == 2 else None


def figure(run_dirs: Iterable[str | os.PathLike | Run], what: str) -> Figure:
    """Build figure ``what`` (a key of :data:`FIGURES`) for one or several runs.

    Raises
    ------
    FigureUnavailable
        When the runs hold nothing for it (no KKT or robustness results, no 2-d inputs).

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> len(figure([path], "margins").axes)
    2
    """
    runs = open_runs(run_dirs)
    if not runs:
        raise ValueError("figure: give at least one run directory")
    with matplotlib.rc_context(STYLE):
        panels = _panels(what, runs)
        columns = min(MAX_COLUMNS, len(panels))
        rows = math.ceil(len(panels) / columns)
        fig = Figure(
            figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.3), layout="constrained"
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            panel(ax)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        fig.suptitle(f"{what}: {', '.join(runs)}", fontsize=9)
    return fig


def save(fig: Figure, out: str | os.PathLike) -> Path:
    """Write a figure as PNG, PDF or SVG, chosen by the file extension."""
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"--out: {path.name!r} must end in one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(STYLE):
        fig.savefig(no_link(path), dpi=RASTER_DPI)
    return path


def plot(run_dirs: Iterable[str | os.PathLike | Run], what: str, out: str | os.PathLike) -> Path:
    """Write figure ``what`` of one or several runs (overlaid) to ``out`` (.png/.pdf/.svg).

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> plot([path], "loss", path / "loss.pdf").name
    'loss.pdf'
    """
    return save(figure(run_dirs, what), out)


def plot_training(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the loss and margin curves of a run as a PNG (``RUN_DIR/training.png``).

    Returns
    -------
    pathlib.Path
        The image written.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> plot_training(train(config, tempfile.mkdtemp() + "/r", progress=False)).name
    'training.png'
    """
    return plot([run_dir], "training", out or Path(run_dir) / "training.png")
