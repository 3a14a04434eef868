"""Student's t multiples of an estimated standard error, against closed forms and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from marginlab.experiments.spread import se_multiple


@pytest.mark.parametrize("sigmas", [1.0, 2.0, 3.0])
def test_one_and_two_degrees_of_freedom_match_their_closed_forms(sigmas):
    p = stats.norm.cdf(sigmas)
    # dof 1 is the Cauchy distribution; dof 2 has the quantile (2p - 1) / sqrt(2 p (1 - p)).
    assert se_multiple(sigmas, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert se_multiple(sigmas, 2) == pytest.approx(
        (2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9
    )


def test_many_degrees_of_freedom_give_the_normal_multiple_back():
    assert se_multiple(3.0, 10**7) == pytest.approx(3.0, rel=1e-5)
    assert se_multiple(3.0, 2) > se_multiple(3.0, 9) > se_multiple(3.0, 19) > 3.0


def test_the_multiple_has_the_normal_coverage_when_the_spread_is_estimated():
    """Draw R normal values many times: |mean| <= t * SE as often as |Z| <= sigmas."""
    rng = np.random.default_rng(0)
    trials, sigmas = 200_000, 2.0
    for repetitions in (2, 3, 5):
        draws = rng.standard_normal((trials, repetitions))
        se = draws.std(axis=1, ddof=1) / math.sqrt(repetitions)
        covered = np.abs(draws.mean(axis=1)) <= se_multiple(sigmas, repetitions - 1) * se
        naive = np.abs(draws.mean(axis=1)) <= sigmas * se
        target = 2 * stats.norm.cdf(sigmas) - 1
        assert covered.mean() == pytest.approx(target, abs=0.003)
        assert naive.mean() < target - 0.03  # the plain multiple covers less


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="dof"):
        se_multiple(3.0, 0)
    with pytest.raises(ValueError, match="dof"):
        se_multiple(3.0, 2.5)
    with pytest.raises(ValueError, match="sigmas"):
        se_multiple(-1.0, 3)
