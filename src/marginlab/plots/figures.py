"""Figure kinds: the panels of ``marginlab plot --what KIND``, laid out for one or many runs.

A kind is a :class:`FigureKind` in :data:`FIGURES`: a description and a function from the
runs' records (:class:`marginlab.results.collect.RunResults`) to panels. :func:`figure` lays
the panels out in journal-column cells and, when several runs are overlaid, puts one legend
of the runs under all panels (their labels, and the key from short label to name); figures
are built on :class:`matplotlib.figure.Figure`, not pyplot, so drawing one leaves the
caller's backend and open figures alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from marginlab.plots.boundary import plot_boundary
from marginlab.plots.kkt import plot_kkt
from marginlab.plots.metrics import (
    MARGIN_KEYS,
    SCHEDULE_PANELS,
    plot_loss,
    plot_margins,
    plot_norms,
    plot_schedule,
)
from marginlab.plots.robustness import plot_robustness
from marginlab.plots.style import (
    FORMATS,
    MAX_COLUMNS,
    PANEL_SIZE,
    RASTER_DPI,
    STYLE,
    legend_handles,
    legend_rows_below,
    series_style,
)
from marginlab.results.collect import RunResults
from marginlab.results.kkt import observer_table
from marginlab.runs.store import no_link

Panel = Callable[[Axes], None]
LEGEND_ROW_INCHES = 0.16
PANEL_LEGEND_ROW_INCHES = 0.13
LEGEND_CHAR_INCHES = 0.05  # at the legend's 6.5 pt


class FigureUnavailable(ValueError):
    """The runs hold nothing to draw for this figure (e.g. no KKT results yet)."""


@dataclass(frozen=True)
class FigureKind:
    """A figure kind: what it shows, and its panels for some runs' records (raising
    :class:`FigureUnavailable` when they hold nothing for it)."""

    description: str
    panels: Callable[[Sequence[RunResults]], list[Panel]]
    overlays: bool = True  # several runs share each panel (boundaries have a panel each)


def _metrics(runs: Sequence[RunResults]):
    empty = [str(r.run.path) for r in runs if r.metrics.empty]
    if empty:
        raise FigureUnavailable(f"{', '.join(empty)}: no metrics to plot yet")
    return runs[0].metrics if len(runs) == 1 else {r.label: r.metrics for r in runs}


def _margin_panels(runs: Sequence[RunResults]) -> list[Panel]:
    data = _metrics(runs)
    return [partial(plot_margins, data=data, normalization=n) for n in MARGIN_KEYS]


def _kkt_panels(runs: Sequence[RunResults]) -> list[Panel]:
    tables = {}
    for r in runs:
        table = r.kkt.long_table() if r.kkt is not None else observer_table(r.metrics)
        if table is not None and len(table):
            tables[r.label] = table
    if not tables:
        raise FigureUnavailable("no KKT results in these runs (run `marginlab kkt RUN_DIR`)")
    data = next(iter(tables.values())) if len(runs) == 1 else tables
    return [partial(plot_kkt, data=data, quantity=q) for q in ("eps_rel", "delta")]


def _robustness_panels(runs: Sequence[RunResults]) -> list[Panel]:
    settings: dict[str, dict] = {}
    for r in runs:
        for report in r.robustness:
            settings.setdefault(report.setting, {})[r.label] = report
    if not settings:
        raise FigureUnavailable(
            "no robustness results in these runs (run `marginlab attack RUN_DIR`)"
        )
    return [
        partial(
            plot_robustness,
            data=next(iter(reports.values())) if len(runs) == 1 else reports,
            title=setting,
        )
        for setting, reports in settings.items()
    ]


def _boundary_panels(runs: Sequence[RunResults]) -> list[Panel]:
    planes = [(r, r.plane) for r in runs]
    planar = [(r, plane) for r, plane in planes if plane is not None]
    if not planar:
        raise FigureUnavailable("the decision boundary needs runs with 2-d inputs")
    return [
        partial(
            plot_boundary,
            model=plane.model,
            x=plane.x,
            y=plane.y,
            title=f"{r.label}, epoch {plane.epoch}",
        )
        for r, plane in planar
    ]


def _metric_panels(*panels: Callable[..., None]) -> Callable[[Sequence[RunResults]], list]:
    def build(runs: Sequence[RunResults]) -> list[Panel]:
        data = _metrics(runs)
        return [partial(panel, data=data) for panel in panels]

    return build


FIGURES: dict[str, FigureKind] = {
    "training": FigureKind(
        "log10 training loss and both normalizations of the margins against epochs",
        lambda runs: _metric_panels(plot_loss)(runs) + _margin_panels(runs),
    ),
    "loss": FigureKind(
        "log10 training (and test) loss against epochs and against log10 accumulated learning rate",
        _metric_panels(plot_loss, partial(plot_loss, x="log10_accumulated_lr")),
    ),
    "margins": FigureKind(
        "normalized and smoothed margins against epochs in both normalizations, with the "
        "epoch where the summed loss fell below l(0)",
        _margin_panels,
    ),
    "norms": FigureKind(
        "parameter norm and per-layer norms against epochs",
        _metric_panels(plot_norms, partial(plot_norms, per_layer=True)),
    ),
    "lr": FigureKind(
        "alpha, log10 learning rate and cumulative rollbacks against epochs",
        _metric_panels(*(partial(plot_schedule, key=key) for key in SCHEDULE_PANELS)),
    ),
    "kkt": FigureKind(
        "KKT epsilon and delta against the training loss (marginlab kkt, or the kkt observer)",
        _kkt_panels,
    ),
    "robustness": FigureKind(
        "robust accuracy against epsilon, one curve per checkpoint (marginlab attack)",
        _robustness_panels,
    ),
    "boundary": FigureKind(
        "decision boundary and training points (2-d inputs)", _boundary_panels, overlays=False
    ),
}
"""Figure kinds, as ``marginlab plot --what`` names them."""


def _run_legend(fig: Figure, runs: Sequence[RunResults], width: float) -> int:
    """One legend of the runs under all panels; returns its number of rows."""
    entries = [
        (r.label if r.label == r.name else f"{r.label}  {r.name}", series_style(i, 0, True))
        for i, r in enumerate(runs)
    ]
    longest = max(len(label) for label, _ in entries)
    columns = max(1, min(len(entries), int(width / (longest * LEGEND_CHAR_INCHES + 0.45))))
    fig.legend(
        handles=legend_handles(entries),
        loc="outside lower center",
        ncols=columns,
        title="runs",
    )
    return math.ceil(len(entries) / columns) + 1


def figure(runs: Mapping[str, RunResults] | Sequence[RunResults], what: str) -> Figure:
    """Build figure ``what`` (a key of :data:`FIGURES`) from one or several runs' records.

    Raises
    ------
    FigureUnavailable
        When the runs hold nothing for it (no KKT or robustness results, no 2-d inputs).

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> from marginlab.results.collect import collect_runs
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> len(figure(collect_runs([path]), "margins").axes)
    2
    """
    if what not in FIGURES:
        raise ValueError(f"--what: {what!r} is not a figure; expected one of {', '.join(FIGURES)}")
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    if not runs:
        raise ValueError("figure: give at least one run")
    kind = FIGURES[what]
    with matplotlib.rc_context(STYLE):
        panels = kind.panels(runs)
        columns = min(MAX_COLUMNS, len(panels))
        rows = math.ceil(len(panels) / columns)
        width = PANEL_SIZE[0] * columns
        fig = Figure(figsize=(width, PANEL_SIZE[1] * rows + 0.3), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            panel(ax)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        # Legends hanging under panels get room of their own, row of panels by row.
        below = [
            max((legend_rows_below(ax) for ax in axes[r * columns : (r + 1) * columns]), default=0)
            for r in range(rows)
        ]
        fig.set_figheight(fig.get_figheight() + PANEL_LEGEND_ROW_INCHES * sum(below))
        if kind.overlays and len(runs) > 1:
            legend_rows = _run_legend(fig, runs, width)
            fig.set_figheight(fig.get_figheight() + LEGEND_ROW_INCHES * legend_rows + 0.2)
        subject = runs[0].label if len(runs) == 1 else f"{len(runs)} runs"
        fig.suptitle(f"{what}: {subject}", fontsize=9)
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
