"""Publication figures, drawn from result records; this package reads no file itself.

- :mod:`~marginlab.plots.metrics`: loss, margins, norms and schedule panels of metrics;
- :mod:`~marginlab.plots.kkt`: KKT certificates along training (a
  :class:`~marginlab.results.kkt.KKTTable`);
- :mod:`~marginlab.plots.robustness`: robust accuracy against epsilon (a
  :class:`~marginlab.results.robustness.RobustnessReport`);
- :mod:`~marginlab.plots.boundary`: a decision boundary on 2-d inputs;
- :mod:`~marginlab.plots.figures`: the figure kinds of ``marginlab plot`` and their layout;
- :mod:`~marginlab.plots.style`: sizes, palette, line styles and legends.

Figures of run directories (opening them, then drawing) are :func:`marginlab.report.plot`.
"""

from marginlab.plots.boundary import plot_boundary
from marginlab.plots.figures import FIGURES, FigureKind, FigureUnavailable, figure, save
from marginlab.plots.kkt import plot_kkt
from marginlab.plots.metrics import plot_loss, plot_margins, plot_norms, plot_schedule
from marginlab.plots.robustness import plot_robustness
from marginlab.plots.style import RASTER_DPI, STYLE

__all__ = [
    "FIGURES",
    "RASTER_DPI",
    "STYLE",
    "FigureKind",
    "FigureUnavailable",
    "figure",
    "plot_boundary",
    "plot_kkt",
    "plot_loss",
    "plot_margins",
    "plot_norms",
    "plot_robustness",
    "plot_schedule",
    "save",
]
