"""The convergence rates of Lyu & Li (2020, Thm 4.3; ``lyu-li.md`` B4) measured on a run.

For an ``L``-homogeneous network trained by gradient descent on an exponentially tailed
loss, with ``T`` the accumulated learning rate (``sum_t eta_t``) and ``Loss`` the summed
training loss, the theory says that

    Loss * T * (log T)^(2 - 2/L)   and   rho^L / log(1 / Loss)

stay bounded away from 0 and infinity, so the late-time slope of ``log Loss`` against
``log T`` tends to -1. ``T`` and ``Loss`` are carried as their logarithms (``Loss`` of
1e-1000 and ``T`` of 1e300 are ordinary here); only the two bounded ratios are formed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from marginlab.losses import Loss
from marginlab.numerics import LN10

RATE_COLUMNS = ("log10_accumulated_lr", "log10_loss_sum", "param_norm")


def rate_values(
    log10_accumulated_lr: float | None,
    log10_loss_sum: float | None,
    param_norm: float | None,
    order: float | None,
) -> tuple[float | None, float | None]:
    """Return ``(Loss T (log T)^(2-2/L), rho^L / log(1/Loss))`` from logged quantities.

    Each is ``None`` where it is undefined: the first needs ``T > 1`` (so ``log T > 0``), the
    second ``Loss < 1``; both need the order ``L``.

    Parameters
    ----------
    log10_accumulated_lr : float or None
        ``log10 T``.
    log10_loss_sum : float or None
        ``log10 Loss`` (the summed training loss).
    param_norm : float or None
        ``rho = ||theta||``.
    order : float or None
        Homogeneity order ``L``.

    Examples
    --------
    >>> loss_rate, norm_rate = rate_values(300.0, -302.0, 2.0, 1.0)
    >>> round(loss_rate, 12), round(norm_rate, 6)
    (0.01, 0.002876)
    """
    if order is None or log10_loss_sum is None:
        return None, None
    loss_rate = norm_rate = None
    if log10_accumulated_lr is not None and log10_accumulated_lr > 0:
        log_t = log10_accumulated_lr * LN10
        log_value = log10_loss_sum * LN10 + log_t + (2.0 - 2.0 / order) * math.log(log_t)
        loss_rate = _finite_exp(log_value)
    if param_norm is not None and param_norm > 0 and log10_loss_sum < 0:
        log_value = order * math.log(param_norm) - math.log(-log10_loss_sum * LN10)
        norm_rate = _finite_exp(log_value)
    return loss_rate, norm_rate


def _finite_exp(log_value: float) -> float | None:
    # Early in training a ratio can be astronomically far from its limit; report it as
    # undefined rather than as inf, which JSON cannot hold.
    return math.exp(log_value) if log_value < 700.0 else None


def _frame(metrics: pd.DataFrame | Sequence[dict]) -> pd.DataFrame:
    frame = metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame(list(metrics))
    missing = [c for c in RATE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"metrics: missing column(s) {', '.join(missing)}; pass the metrics of a "
            "marginlab run (Run.metrics or the rows of metrics.jsonl)"
        )
    return frame


def rates_table(metrics: pd.DataFrame | Sequence[dict], order: float) -> pd.DataFrame:
    """Add the two rate quantities to a run's metrics, one row per logged epoch.

    Parameters
    ----------
    metrics : pandas.DataFrame or sequence of dict
        ``Run.metrics`` or rows of ``metrics.jsonl`` (needs ``log10_accumulated_lr``,
        ``log10_loss_sum``, ``param_norm``).
    order : float
        Homogeneity order ``L`` of the model.

    Returns
    -------
    pandas.DataFrame
        Columns ``epoch`` (when present), ``log10_accumulated_lr``, ``log10_loss_sum``,
        ``param_norm``, ``loss_rate`` (``Loss T (log T)^(2-2/L)``) and ``norm_rate``
        (``rho^L / log(1/Loss)``); NaN where undefined.

    Examples
    --------
    >>> rows = [{"log10_accumulated_lr": 300.0, "log10_loss_sum": -302.0, "param_norm": 2.0}]
    >>> round(float(rates_table(rows, order=1.0)["loss_rate"].iloc[0]), 12)
    0.01
    """
    frame = _frame(metrics)
    columns = (["epoch"] if "epoch" in frame.columns else []) + list(RATE_COLUMNS)
    table = frame[columns].copy()
    values = [
        rate_values(t, loss, rho, order)
        for t, loss, rho in zip(
            _optional(frame["log10_accumulated_lr"]),
            _optional(frame["log10_loss_sum"]),
            _optional(frame["param_norm"]),
            strict=True,
        )
    ]
    table["loss_rate"] = [np.nan if v[0] is None else v[0] for v in values]
    table["norm_rate"] = [np.nan if v[1] is None else v[1] for v in values]
    return table


def _optional(column: pd.Series) -> list[float | None]:
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in column]


def late_time_slope(metrics: pd.DataFrame | Sequence[dict], fraction: float = 0.5) -> float:
    """Least-squares slope of ``log Loss`` against ``log T`` over the last ``fraction`` of rows.

    Lyu & Li predict -1 (``Loss = Theta(1 / (T (log T)^(2-2/L)))``), approached from below
    slowly because of the logarithmic factor.

    Parameters
    ----------
    metrics : pandas.DataFrame or sequence of dict
        A run's metrics (``log10_accumulated_lr``, ``log10_loss_sum``).
    fraction : float
        Share of the rows with ``T > 0`` to fit, counted from the end, in ``(0, 1]``.

    Returns
    -------
    float

    Examples
    --------
    >>> rows = [{"log10_accumulated_lr": t, "log10_loss_sum": -t - 1.0, "param_norm": 1.0}
    ...         for t in range(1, 9)]
    >>> round(late_time_slope(rows), 12)
    -1.0
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction: expected a share in (0, 1], got {fraction!r}")
    frame = _frame(metrics)
    log_t = np.array([np.nan if v is None else v for v in _optional(frame["log10_accumulated_lr"])])
    log_loss = np.array([np.nan if v is None else v for v in _optional(frame["log10_loss_sum"])])
    keep = np.isfinite(log_t) & np.isfinite(log_loss)
    log_t, log_loss = log_t[keep], log_loss[keep]
    count = math.ceil(fraction * len(log_t))
    if count < 2 or np.ptp(log_t[-count:]) == 0:
        raise ValueError(
            f"metrics: only {count} late row(s) with distinct accumulated learning rates; "
            "log more often (log.every) or raise fraction"
        )
    return float(np.polyfit(log_t[-count:], log_loss[-count:], 1)[0])


def rates_observer(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss, row: dict
) -> dict[str, float | None]:
    """Observer ``rates``: the two rate quantities of the metrics row being written.

    Costs nothing beyond the row itself; values are ``None`` while undefined.
    """
    loss_rate, norm_rate = rate_values(
        row.get("log10_accumulated_lr"),
        row.get("log10_loss_sum"),
        row.get("param_norm"),
        getattr(model, "homogeneity_order", None),
    )
    return {"rate_loss": loss_rate, "rate_norm": norm_rate}
