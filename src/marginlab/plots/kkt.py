"""The KKT panel: certificates' epsilon or delta against the training loss."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes

from marginlab.plots.metrics import runs_of
from marginlab.plots.style import draw, finish, log_y, series_legend, series_style

KKTTables = pd.DataFrame | Mapping[str, pd.DataFrame]
"""Tables in the form of :meth:`marginlab.results.kkt.KKTTable.long_table`: one run's, or
several keyed by their label."""

QUANTITIES = {
    "eps_rel": r"KKT $\epsilon$ / $\|\tilde\theta\|$ (relative)",
    "delta": r"KKT $\delta$ (complementary slackness)",
}


def plot_kkt(ax: Axes, data: KKTTables, quantity: str = "eps_rel") -> None:
    """KKT ``eps_rel`` or ``delta`` against the training loss, one line per certificate.

    The loss axis runs from right to left so that training time goes left to right; a
    certificate equal to 0 is a triangle on the bottom edge of the log axis.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> table = pd.DataFrame({"log10_loss": [-5, -50], "eps_rel": [0.1, 0.01],
    ...                       "delta": [0.2, 0.0], "certificate": ["loss weights"] * 2})
    >>> plot_kkt(ax, table, "delta")
    >>> ax.lines[0].get_ydata().tolist()[0], len(ax.lines)  # the 0 is marked apart
    (0.2, 2)
    """
    runs = runs_of(data)
    overlay = len(runs) > 1
    names = list(dict.fromkeys(name for _, table in runs for name in table["certificate"].tolist()))
    entries = {}
    for r, (run_label, table) in enumerate(runs):
        for name, rows in table.groupby("certificate", sort=False):
            s = names.index(name)
            style = series_style(r, s, overlay)
            style.update(marker=style.get("marker", "o"), markevery=1)
            label = ": ".join(part for part in (run_label, str(name)) if part)
            rows = rows.sort_values("log10_loss", ascending=False)
            if draw(ax, rows["log10_loss"], rows[quantity], log=True, label=label, **style):
                entries[str(name)] = (
                    {"color": "0.2", "linestyle": style["linestyle"]} if overlay else style
                )
    if ax.lines:
        ax.invert_xaxis()
    log_y(ax)
    finish(ax, "training loss, mean (log$_{10}$)", QUANTITIES[quantity])
    series_legend(ax, list(entries.items()))
