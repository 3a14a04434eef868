"""The decision-boundary panel of a model on 2-d inputs."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from torch import nn

from marginlab.plots.style import MARKERS, finish, series_legend


def plot_boundary(
    ax: Axes,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    title: str | None = None,
    grid: int = 200,
) -> None:
    """Decision regions and boundary of ``model`` on 2-d inputs, with the points ``(x, y)``.

    The boundary of a binary model is the zero level set of its score (the single output,
    or the difference of two outputs), traced on a ``grid x grid`` evaluation; with more
    classes it lies between the predicted-class regions.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    model : torch.nn.Module
        A classifier of 2-d inputs.
    x, y : torch.Tensor
        ``(N, 2)`` points and their class indices.
    title : str, optional
        Panel title.
    grid : int
        Evaluation points per axis.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> plot_boundary(ax, model, x, torch.tensor([1, 0, 1]), grid=20)
    >>> len(ax.collections[-1].get_offsets())  # the two points of class 1
    2
    """
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x: the decision boundary needs 2-d inputs, got {tuple(x.shape[1:])}")
    points = x.detach().double().cpu().numpy()
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * np.maximum(high - low, 1e-3)
    g0, g1 = np.meshgrid(*(np.linspace(low[i] - pad[i], high[i] + pad[i], grid) for i in (0, 1)))
    inputs = torch.as_tensor(np.column_stack([g0.ravel(), g1.ravel()]), dtype=x.dtype)
    with torch.no_grad():
        outputs = model(inputs.to(x.device)).double().cpu()
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
    labels = y.cpu().numpy()
    entries = []
    for c in range(n_classes):
        mine = points[labels == c]
        style = {
            "marker": MARKERS[c % len(MARKERS)],
            "markerfacecolor": "white" if c % 2 == 0 else "black",
            "markeredgecolor": "black",
            "linestyle": "none",
        }
        ax.scatter(
            mine[:, 0],
            mine[:, 1],
            s=18,
            marker=style["marker"],
            facecolors=style["markerfacecolor"],
            edgecolors="black",
            linewidths=0.8,
            label=f"class {c}",
            zorder=3,
        )
        entries.append((f"class {c}", style))
    entries.append(("decision boundary", {"color": "black", "linewidth": 1.2}))
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    finish(ax, "input $x_1$", "input $x_2$", title)
    # The legend goes beside the square plot, where it hides no points.
    series_legend(ax, entries, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncols=1)
