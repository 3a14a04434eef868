"""How every figure looks: sizes, the colour-blind-safe palette, line styles and legends.

One rule tells series apart in every panel: with one run, a series (a quantity, a
certificate, a checkpoint) has its own colour *and* line style; with several runs overlaid,
the run has a colour and a marker, the series a line style. Colours are Okabe & Ito's
(safe for the common colour-vision deficiencies) and every encoding is doubled by a line
style or marker, so a figure also reads in greyscale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import offset_copy

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
    "svg.fonttype": "none",
}
PANEL_SIZE = (3.4, 2.6)  # inches: one journal column
MAX_COLUMNS = 3
RASTER_DPI = 200
FORMATS = (".png", ".pdf", ".svg")

# Okabe-Ito, led by black, without the yellow that vanishes on white.
COLORS = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)))
THRESHOLD_STYLE = (0, (1, 2))
# Markers every tenth of the axes diagonal: evenly spread on screen even where the data
# points crowd (e.g. against log10 T).
MARKER_SPACING = 0.1
LEGEND_INSIDE_MAX = 3
LEGEND_BELOW_POINTS = 34  # under the tick labels and the axis label, whatever the panel's height
BELOW_GID = "legend-below:"
ZERO_MARKER = "v"
ZERO_GID = "zero"
ZERO_LABEL = "= 0 (off the log axis)"


def series_style(run: int, series: int, overlay: bool) -> dict[str, Any]:
    """Colour, line style and marker of series ``series`` of run ``run``.

    Examples
    --------
    >>> series_style(0, 1, overlay=False)["color"] != series_style(0, 0, overlay=False)["color"]
    True
    >>> series_style(2, 0, overlay=True)["marker"]
    '^'
    """
    style: dict[str, Any] = {"linestyle": LINE_STYLES[series % len(LINE_STYLES)]}
    if overlay:
        style["color"] = COLORS[run % len(COLORS)]
        style["marker"] = MARKERS[run % len(MARKERS)]
        style["markevery"] = MARKER_SPACING
    else:
        style["color"] = COLORS[series % len(COLORS)]
    return style


def draw(ax: Axes, x: Sequence[float], y: Sequence[float], *, log: bool = False, **style: Any):
    """Plot one series; all-missing series draw nothing (no empty legend entry).

    On a log axis (``log``), values ``<= 0`` have no place: the line breaks there and each
    such point is marked with a triangle on the bottom edge, never joined by a line that
    plunges to the bottom.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.isnan(y).all():
        return None
    off_axis = log & (y <= 0) if log else np.zeros(len(y), dtype=bool)
    (line,) = ax.plot(x, np.where(off_axis, np.nan, y), **style)
    if off_axis.any():
        ax.plot(
            x[off_axis],
            np.zeros(off_axis.sum()),
            linestyle="none",
            marker=ZERO_MARKER,
            color=line.get_color(),
            markersize=4,
            clip_on=False,
            transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction: the edge
            label=f"_{line.get_label()} = 0",
            gid=ZERO_GID,
        )
    return line


def log_y(ax: Axes) -> None:
    """Log-scale the y axis with enough labelled ticks: within two decades the 1-2-5 ticks
    are labelled too, beyond that every decade."""
    if not ax.lines:
        return
    ax.set_yscale("log")
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.lines])
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive) and np.log10(positive.max() / positive.min()) < 2:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def legend_handles(entries: Sequence[tuple[str, dict[str, Any]]]) -> list[Line2D]:
    """Proxy lines for a legend: one per ``(label, style)``."""
    handles = []
    for label, style in entries:
        style = {k: v for k, v in style.items() if k != "markevery"}
        handles.append(Line2D([], [], label=label, **style))
    return handles


def finish(ax: Axes, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Axis labels, title, and ``no data`` on an empty panel."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if not ax.lines and not ax.collections:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")


def series_legend(ax: Axes, entries: Sequence[tuple[str, dict[str, Any]]], **options: Any):
    """The panel's legend of its series (quantities), with the mark of values at 0 on a log
    axis when there are some; a long one goes under the panel."""
    if any(line.get_gid() == ZERO_GID for line in ax.lines):
        zero = {"color": "0.2", "marker": ZERO_MARKER, "linestyle": "none"}
        entries = [*entries, (ZERO_LABEL, zero)]
    if not entries:
        return None
    if len(entries) <= LEGEND_INSIDE_MAX:
        return ax.legend(handles=legend_handles(entries), **options)
    below = offset_copy(ax.transAxes, ax.figure, y=-LEGEND_BELOW_POINTS, units="points")
    options = {
        "loc": "upper center",
        "bbox_to_anchor": (0.5, 0.0),
        "bbox_transform": below,
        "ncols": 2,
        **options,
    }
    legend = ax.legend(handles=legend_handles(entries), **options)
    if options["loc"] == "upper center":  # hangs under the panel: the figure makes room
        legend.set_gid(f"{BELOW_GID}{-(-len(entries) // options['ncols'])}")
    return legend


def legend_rows_below(ax: Axes) -> int:
    """Rows of the panel's legend when it hangs under the panel (0 when inside)."""
    legend = ax.get_legend()
    gid = legend.get_gid() if legend is not None else None
    return int(gid.removeprefix(BELOW_GID)) if gid and gid.startswith(BELOW_GID) else 0
