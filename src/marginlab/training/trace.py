"""A run's whole trajectory in memory: one row per accepted epoch (``fit(trace=...)``).

The metrics rows of a run come every ``log.every`` epochs; a trace keeps every epoch's
``log L``, smallest margin and ``||theta||`` (trainable parameters), at the cost of one norm
per step, and optionally columns of your own computed from the model at that epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn

from marginlab.measure.margins import Evaluation
from marginlab.training.attempt import parameter_norm

Columns = Callable[[nn.Module], Mapping[str, Any]]


class Trace:
    """Rows ``epoch, log_loss_mean (natural log), q_min, norm`` of every accepted epoch.

    Parameters
    ----------
    columns : callable, optional
        Called with the model after each accepted epoch (and at epoch 0), without
        gradients; the values of the mapping it returns are that epoch's extra columns.

    Examples
    --------
    >>> net = nn.Linear(2, 1, bias=False)
    >>> trace = Trace(lambda model: {"w0": float(model.weight[0, 0])})
    >>> trace.record(0, Evaluation(torch.zeros(3), torch.ones(3)), list(net.parameters()), net)
    >>> list(trace.frame().columns)
    ['epoch', 'log_loss_mean', 'q_min', 'norm', 'w0']
    """

    COLUMNS = ("epoch", "log_loss_mean", "q_min", "norm")

    def __init__(self, columns: Columns | None = None) -> None:
        self.columns = columns
        self.rows: list[tuple[int, float, float, float]] = []
        self.extra: list[dict[str, Any]] = []

    def record(
        self,
        epoch: int,
        evaluation: Evaluation,
        params: list[torch.Tensor],
        model: nn.Module,
        norm: float | None = None,
    ) -> None:
        """Add the row of an accepted epoch (``norm``: ``||params||`` if already known)."""
        norm = parameter_norm(params) if norm is None else norm
        self.rows.append((epoch, evaluation.log_loss_mean, evaluation.q_min, norm))
        if self.columns is not None:
            with torch.no_grad():
                self.extra.append(dict(self.columns(model)))

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, the extra columns after the four of every trace."""
        frame = pd.DataFrame(self.rows, columns=list(self.COLUMNS))
        if self.extra:
            extra = pd.DataFrame(self.extra, index=frame.index)
            frame = pd.concat([frame, extra], axis=1)
        return frame
