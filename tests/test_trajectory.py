"""Trajectory analysis: thresholds, drops, rates and counts, against closed forms and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from marginlab.measure.trajectory import (
    binomial_interval,
    decades,
    excess_frequency,
    fit_exponent,
    increases,
    linearity,
    max_drawdown,
    monotonicity,
    relative_drops,
    sign_test,
    slope,
    spread,
    threshold_row,
)


def test_relative_drops_and_spread():
    assert relative_drops(np.array([2.0, 1.0, 1.5, 1.2])).tolist() == pytest.approx([0.5, 0.0, 0.2])
    assert relative_drops(np.array([1.0, 2.0, 3.0])).max() == 0.0
    assert spread(np.array([1.0, 1.1, 0.9])) == pytest.approx(0.2)


def test_linearity_detects_a_bend_and_needs_three_points():
    x = np.arange(20.0)
    assert linearity(x, -3.0 * x) == pytest.approx(1.0)
    assert linearity(x, (x - 10.0) ** 2) < 0.1
    assert math.isnan(linearity([0.0, 1.0], [0.0, 1.0]))


def test_exponents_from_logarithms_beyond_float_range():
    log_t = np.linspace(100.0, 700.0, 7) * math.log(10)  # T from 1e100 to 1e700
    log_loss = -1.5 * log_t + 3.0  # L from 1e-150 to 1e-1050
    assert fit_exponent(log_t, log_loss) == pytest.approx(-1.5)
    assert math.isnan(slope([1.0, 1.0], [0.0, 2.0]))
    assert decades([np.nan, 2.0, 5.5]) == 3.5


def test_increases_drawdown_and_monotonicity():
    assert increases(np.log([4.0, 2.0, 3.0, 1.0, 1.5, 0.5])).tolist() == [2, 4]
    assert increases([1.0, 1.0 + 1e-13, 0.5], tol=1e-12).tolist() == []
    assert max_drawdown([]) == 0.0 and max_drawdown([3.0, 1.0, 2.0]) == pytest.approx(2.0)
    m = monotonicity([0.0, 0.5, 0.45, 1.0])
    assert m.decreasing_steps == 1 and m.relative_drawdown == pytest.approx(0.05)
    assert not monotonicity([1.0, 0.9, 0.95]).nearly_increasing(1.0)
    assert not monotonicity([0.0, float("nan"), 1.0]).nearly_increasing(1.0)


def test_threshold_row_reads_either_smoothed_margin():
    metrics = pd.DataFrame(
        {"smoothed_margin": [None, None, 0.1], "smoothed_margin_layers": [None, 0.2, 0.3]}
    )
    assert threshold_row(metrics) == 1
    assert threshold_row(pd.DataFrame({"epoch": [0, 1]})) is None


def test_counts_against_the_binomial_distribution():
    # two-sided sign test: twice the tail of Binomial(n, 1/2)
    assert sign_test(9, 1) == pytest.approx(2 * binom.cdf(1, 10, 0.5))
    assert sign_test(0, 0) == 1.0
    low, high = binomial_interval(3, 20)
    # Clopper-Pearson: the tails at the bounds are 2.5% each
    assert binom.sf(2, 20, low) == pytest.approx(0.025, rel=1e-6)
    assert binom.cdf(3, 20, high) == pytest.approx(0.025, rel=1e-6)
    assert binomial_interval(0, 0) == (0.0, 1.0)
    # Fisher's one-sided test: the hypergeometric tail of the observed table and beyond
    from scipy.stats import hypergeom

    assert excess_frequency(5, 20, 0, 20) == pytest.approx(hypergeom.sf(4, 40, 5, 20))
