"""Helpers of the Vardi and Soudry reproductions: end-point classes, frequencies, rate fits."""

import numpy as np
import pytest
import torch

from marginlab.experiments.papers.soudry import (
    band_ratio,
    late_slope,
    log_spaced_steps,
    logistic_gd,
)
from marginlab.experiments.papers.vardi import (
    IMPROVABLE,
    NOT_KKT,
    NOT_SEPARATED,
    UNIMPROVABLE,
    Endpoint,
    batched_gd,
    classify,
    frequency,
)
from marginlab.measure.references.vardi import construction


def test_classify_tells_non_local_kkt_points_from_local_ones():
    v4, v5 = construction("V4"), construction("V5")
    assert classify(v4, v4.theta, n_random=50).status == IMPROVABLE
    assert classify(v5, v5.theta, n_random=50).status == UNIMPROVABLE
    assert classify(v4, v4.better, n_random=50).status == UNIMPROVABLE
    # off the KKT point: the certificate's residual is large
    moved = v5.theta + torch.tensor([0.0, 0.3, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert classify(v5, moved, n_random=50).status == NOT_KKT
    flipped = v4.theta * torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    assert classify(v4, flipped).status == NOT_SEPARATED


def test_frequency_counts_only_separated_runs():
    ends = [Endpoint(IMPROVABLE, 0.25), Endpoint(NOT_SEPARATED, 0.0), Endpoint(NOT_KKT, 0.1)]
    assert frequency(ends) == (1, 2)
    assert frequency(ends, NOT_KKT) == (1, 2)
    assert frequency([Endpoint(NOT_SEPARATED, 0.0)]) == (0, 0)


def test_batched_gd_runs_each_seed_on_its_own():
    v4 = construction("V4")
    open_set = [0.1, -0.05, -0.05, 0.1, 0.1, 0.1]  # converges to theta* (gamma 1/4)
    both_active = [0.1, 0.08, 0.05, 0.1, 0.1, 0.1]  # converges to the global gamma
    theta = batched_gd(
        v4,
        torch.tensor([open_set, both_active], dtype=torch.float64),
        plain_steps=300,
        log_steps=600,
    )
    margins = [classify(v4, t, n_random=20).margin for t in theta]
    assert margins[0] == pytest.approx(0.25, abs=1e-3)
    assert margins[1] == pytest.approx(1 / (2 * np.sqrt(2)), abs=2e-3)


def test_late_slope_uses_only_the_late_rows():
    x = np.linspace(0.0, 5.0, 51)
    y = np.where(x < 3.0, 2.0 * x, 6.0 - (x - 3.0))
    assert late_slope(x, y, 1.5) == pytest.approx(-1.0)
    assert late_slope(x, y, 5.0) != pytest.approx(-1.0)
    with pytest.raises(ValueError):
        late_slope(x, y, 0.01)


def test_band_ratio_and_steps():
    assert band_ratio(np.array([2.0, 2.0])) == 1.0
    assert band_ratio(np.array([1.0, 3.0])) == 3.0
    assert band_ratio(np.array([1.0, 0.0])) == float("inf")
    steps = log_spaced_steps(10_000)
    assert steps[0] == 1 and steps[-1] == 10_000 and (np.diff(steps) > 0).all()


def test_logistic_gd_follows_the_soudry_rates_on_two_points():
    x, y = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0])
    w_star = np.array([0.5, -1.0])
    run = logistic_gd(x, y, w_star, 20_000)
    log_t = np.log10(run.t)
    assert late_slope(log_t, np.log10(run.loss), 1.0) == pytest.approx(-1.0, abs=0.05)
    growth = late_slope(np.log(run.t), run.norm, np.log(10.0)) / np.linalg.norm(w_star)
    assert growth == pytest.approx(1.0, abs=0.05)
    assert run.error[-1] < run.error[len(run.error) // 2]
