"""The robustness panel: robust accuracy against epsilon, one curve per checkpoint."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
from matplotlib.axes import Axes

from marginlab.plots.style import MARKERS, draw, finish, series_legend, series_style
from marginlab.results.robustness import RobustnessReport

NORM_NAMES = {"l2": "L2", "linf": r"L$_\infty$"}


def plot_robustness(
    ax: Axes,
    data: RobustnessReport | Mapping[str, RobustnessReport],
    title: str | None = None,
) -> None:
    """Robust accuracy against epsilon, one curve per checkpoint (Lyu & Li, Fig. 8).

    One run's checkpoints run from light to dark along a colour map of monotone lightness
    (viridis), each with its own line style, so the order survives greyscale; overlaid runs
    have a colour each and their checkpoints a line style. A minimal-norm attack gives
    whole curves, a fixed-epsilon one (PGD) marked points.

    Examples
    --------
    >>> import numpy as np
    >>> from marginlab.results.robustness import CheckpointAttack
    >>> late = CheckpointAttack("last", 9, -5.0, 0.1, np.array([0.2, 0.8]), np.zeros(2))
    >>> report = RobustnessReport("l2", "cw", "train", {}, 0, (0.5,), False, np.arange(2),
    ...                           (late,))
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> plot_robustness(ax, report)
    >>> float(ax.lines[0].get_ydata()[0]), ax.lines[0].get_label()
    (1.0, 'last (epoch 9)')
    """
    runs = [(None, data)] if isinstance(data, RobustnessReport) else list(data.items())
    overlay = len(runs) > 1
    colors = matplotlib.colormaps["viridis"]
    entries = []
    for r, (run_label, report) in enumerate(runs):
        curves = report.curves()
        labels = list(dict.fromkeys(curves["checkpoint"]))
        for s, label in enumerate(labels):
            curve = curves[curves["checkpoint"] == label]
            style = series_style(r, s, overlay)
            if not overlay:
                style["color"] = colors(0.85 * (1 - s / max(1, len(labels) - 1)))
            if report.fixed_eps:
                style.update(marker=MARKERS[s % len(MARKERS)], markevery=1)
            name = ": ".join(part for part in (run_label, label) if part)
            draw(ax, curve["eps"], curve["robust_accuracy"], label=name, **style)
            if r == 0:
                plain = {"color": "0.2", "linestyle": style["linestyle"]}
                entries.append((label, plain if overlay else style))
    ax.set_ylim(-0.02, 1.02)
    norm = NORM_NAMES.get(runs[0][1].norm, runs[0][1].norm) if runs else "L2"
    finish(
        ax,
        f"perturbation size $\\epsilon$ ({norm} norm; inputs in [0, 1])",
        "robust accuracy (fraction)",
        title,
    )
    series_legend(ax, entries)
