"""What a training trajectory did: where the theory starts, how a quantity moved, at what rate.

Plain functions of logged values (a run's metrics table, or arrays), shared by the papers'
claim criteria, the plots and the report:

- where the theorems start: :func:`threshold_row`, :func:`after_threshold`,
  :func:`first_fit_epoch`;
- how a quantity moved: :func:`relative_drops`, :func:`monotonicity`, :func:`increases`,
  :func:`linearity`;
- at what rate: :func:`fit_exponent` (the slope of a least-squares line in log-log
  coordinates, e.g. the exponent ``p`` of ``L ~ T^-p``);
- how sure a count is: :func:`sign_test`, :func:`binomial_interval`,
  :func:`excess_frequency`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def _column(metrics: pd.DataFrame, key: str) -> np.ndarray:
    if key not in metrics:
        return np.full(len(metrics), np.nan)
    return pd.to_numeric(metrics[key], errors="coerce").to_numpy(dtype=float)


# where the theory starts -----------------------------------------------------------------


def threshold_row(metrics: pd.DataFrame) -> int | None:
    """Position of the first row whose summed loss is below ``l(0)``, or None.

    That is the first row with a smoothed margin (either normalization), which the engine
    writes only once the summed training loss is below the loss's threshold, where the
    margin theorems of Lyu & Li start.

    Examples
    --------
    >>> threshold_row(pd.DataFrame({"epoch": [0, 5, 10], "smoothed_margin": [None, 0.1, 0.2]}))
    1
    """
    defined = ~np.isnan(_column(metrics, "smoothed_margin")) | ~np.isnan(
        _column(metrics, "smoothed_margin_layers")
    )
    rows = np.flatnonzero(defined)
    return int(rows[0]) if len(rows) else None


def after_threshold(metrics: pd.DataFrame) -> pd.DataFrame:
    """The logged rows from :func:`threshold_row` on (none when it is never reached).

    Examples
    --------
    >>> rows = pd.DataFrame({"epoch": [0, 1, 2], "smoothed_margin": [None, 0.1, 0.2]})
    >>> after_threshold(rows)["epoch"].tolist()
    [1, 2]
    """
    row = threshold_row(metrics)
    return metrics.iloc[0:0] if row is None else metrics.iloc[row:]


def first_fit_epoch(metrics: pd.DataFrame) -> int | None:
    """The first logged epoch with 100% training accuracy (None if never).

    Examples
    --------
    >>> first_fit_epoch(pd.DataFrame({"epoch": [0, 10, 20], "train_acc": [0.5, 1.0, 1.0]}))
    10
    """
    fitted = _column(metrics, "train_acc") >= 1.0
    return int(metrics["epoch"].iloc[int(np.argmax(fitted))]) if fitted.any() else None


# how a quantity moved --------------------------------------------------------------------


def relative_drops(values: Sequence[float]) -> np.ndarray:
    """``max(0, (v[t] - v[t+1]) / |v[t]|)`` for consecutive values: how much each step fell.

    Examples
    --------
    >>> relative_drops(np.array([1.0, 2.0, 1.5, 1.5])).tolist()
    [0.0, 0.25, 0.0]
    """
    values = np.asarray(values, dtype=float)
    return np.maximum(0.0, (values[:-1] - values[1:]) / np.abs(values[:-1]))


def increases(values: Sequence[float], tol: float = 0.0) -> np.ndarray:
    """The positions ``t >= 1`` at which ``values[t] > values[t-1] + tol``.

    Examples
    --------
    >>> increases(np.log([4.0, 2.0, 3.0, 1.0, 1.5, 0.5])).tolist()
    [2, 4]
    """
    values = np.asarray(values, dtype=float)
    return np.nonzero(np.diff(values) > tol)[0] + 1


def max_drawdown(values: Sequence[float]) -> float:
    """The largest fall of a sequence below its running maximum (0 for a non-decreasing one).

    Examples
    --------
    >>> max_drawdown([0.0, 1.0, 0.75, 2.0, 1.5])
    0.5
    >>> max_drawdown([1.0, 2.0, 3.0])
    0.0
    """
    array = np.asarray(values, dtype=float)
    if len(array) == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(array) - array))


@dataclass(frozen=True)
class Monotonicity:
    """How far a sequence is from non-decreasing.

    Attributes
    ----------
    rise : float
        Last value minus first.
    drawdown : float
        :func:`max_drawdown`.
    relative_drawdown : float
        ``drawdown / rise`` (inf when the sequence did not rise).
    decreasing_steps : int
        Steps at which the value went down.
    """

    rise: float
    drawdown: float
    relative_drawdown: float
    decreasing_steps: int

    def nearly_increasing(self, tolerance: float) -> bool:
        """Rose overall, and never fell by more than ``tolerance`` times the rise."""
        return self.rise > 0 and self.relative_drawdown <= tolerance


def monotonicity(values: Sequence[float]) -> Monotonicity:
    """Measure how nearly non-decreasing ``values`` is.

    Examples
    --------
    >>> m = monotonicity([0.0, 1.0, 0.9, 2.0])
    >>> m.rise, round(m.relative_drawdown, 3), m.decreasing_steps, m.nearly_increasing(0.1)
    (2.0, 0.05, 1, True)
    """
    array = np.asarray(values, dtype=float)
    if len(array) < 2 or not np.all(np.isfinite(array)):
        return Monotonicity(math.nan, math.nan, math.inf, 0)
    rise = float(array[-1] - array[0])
    drawdown = max_drawdown(array)
    relative = drawdown / rise if rise > 0 else math.inf
    return Monotonicity(rise, drawdown, relative, int(np.sum(np.diff(array) < 0)))


def linearity(x: Sequence[float], y: Sequence[float]) -> float:
    """R^2 of the least-squares line through ``(x, y)`` (nan with fewer than 3 points).

    Examples
    --------
    >>> round(linearity(np.arange(5.0), 3 * np.arange(5.0) + 1), 12)
    1.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or y.var() == 0:
        return math.nan
    residual = y - np.polyval(np.polyfit(x, y, 1), x)
    return float(1.0 - residual.var() / y.var())


def spread(values: Sequence[float]) -> float:
    """``(max - min) / mean``: how far a quantity that should settle still moves.

    Examples
    --------
    >>> round(spread(np.array([0.9, 1.0, 1.1])), 12)
    0.2
    """
    values = np.asarray(values, dtype=float)
    return float((values.max() - values.min()) / values.mean())


# at what rate ----------------------------------------------------------------------------


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Slope of the least-squares line through ``(x, y)``; nan with fewer than 2 distinct x.

    Examples
    --------
    >>> round(slope([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]), 12)
    2.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def fit_exponent(log_x: Sequence[float], log_y: Sequence[float]) -> float:
    """The exponent ``p`` of ``y ~ x^p``, from logarithms (any base, the same for both).

    Working from logarithms lets ``y`` be 1e-1000 and ``x`` 1e300.

    Examples
    --------
    >>> t = np.logspace(1, 5, 9)
    >>> round(fit_exponent(np.log(t), np.log(3.0 / t**2)), 12)
    -2.0
    """
    return slope(log_x, log_y)


def decades(log10_values: Sequence[float]) -> float:
    """How many decades the values span (``max - min`` of their log10; 0 when empty).

    Examples
    --------
    >>> decades([1.0, 2.5, 4.0])
    3.0
    """
    values = np.asarray(log10_values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.ptp(values)) if len(values) else 0.0


# how sure a count is ---------------------------------------------------------------------


def sign_test(more: int, fewer: int) -> float:
    """Two-sided exact sign test of ``more`` against ``fewer`` (1 when both are 0).

    Under "no change", a sample that moved is equally likely to have moved either way.

    Examples
    --------
    >>> round(sign_test(9, 1), 4), sign_test(0, 0)
    (0.0215, 1.0)
    """
    from scipy.stats import binomtest

    return float(binomtest(more, more + fewer).pvalue) if more + fewer else 1.0


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) confidence interval of a frequency; ``(0, 1)`` with no trials.

    Examples
    --------
    >>> low, high = binomial_interval(0, 30)
    >>> low, round(high, 3)
    (0.0, 0.116)
    """
    from scipy.stats import binomtest

    if trials == 0:
        return 0.0, 1.0
    interval = binomtest(successes, trials).proportion_ci(level, method="exact")
    return float(interval.low), float(interval.high)


def excess_frequency(k: int, n: int, k_control: int, n_control: int) -> float:
    """One-sided Fisher exact p-value that ``k / n`` exceeds ``k_control / n_control``.

    Examples
    --------
    >>> round(excess_frequency(10, 100, 0, 100), 5)
    0.00077
    >>> excess_frequency(0, 10, 0, 10)
    1.0
    """
    from scipy.stats import fisher_exact

    table = [[k, n - k], [k_control, n_control - k_control]]
    return float(fisher_exact(table, alternative="greater").pvalue)
