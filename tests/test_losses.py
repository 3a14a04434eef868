"""Log-space losses against mpmath at 50 digits, over margins from -1e3 to 1e6."""

import math

import mpmath
import numpy as np
import pytest
import torch

from marginlab.losses import get_loss, log_mean, log_sum
from marginlab.numerics import format_log10, log_softplus, logistic_inverse_from_log

mpmath.mp.dps = 50

MARGINS = np.concatenate(
    [
        -np.logspace(3, -3, 60),
        [0.0],
        np.logspace(-3, 6, 120),
        [0.5413248546129181, -0.5413248546129181, 19.999, 20.001, 36.7, 708.5, 745.2],
    ]
)


def _check(ours: float, exact: mpmath.mpf) -> None:
    exact = float(exact)
    # log l is ill-conditioned only next to its root (l = 1); there the absolute error counts.
    if abs(exact) < 1e-3:
        assert abs(ours - exact) < 1e-15, (ours, exact)
    else:
        assert abs(ours - exact) <= 1e-12 * abs(exact), (ours, exact)


def _reference(name: str, margins: list[float]) -> mpmath.mpf:
    total = mpmath.fsum(mpmath.exp(-mpmath.mpf(s)) for s in margins)
    if name == "exponential":
        return mpmath.log(total)
    return mpmath.log(mpmath.log1p(total))


@pytest.mark.parametrize("name", ["exponential", "logistic", "cross_entropy"])
def test_binary_log_loss_matches_mpmath(name):
    loss = get_loss(name)
    ours = loss.log_per_sample(torch.tensor(MARGINS, dtype=torch.float64).unsqueeze(1))
    for q, value in zip(MARGINS, ours.tolist(), strict=True):
        _check(value, _reference(name, [q]))


@pytest.mark.parametrize("name", ["exponential", "cross_entropy"])
def test_multiclass_log_loss_matches_mpmath(name):
    rng = np.random.default_rng(0)
    loss = get_loss(name)
    for q in MARGINS[::3]:
        margins = [q, q + abs(rng.normal()) * max(1.0, abs(q)) * 0.1, q + 3.0]
        ours = float(loss.log_per_sample(torch.tensor([margins], dtype=torch.float64))[0])
        _check(ours, _reference(name, margins))


@pytest.mark.parametrize("tracked", [False, True])
def test_log_softplus_matches_mpmath_with_and_without_a_gradient(tracked):
    # two formulas: one that keeps autograd finite, a shorter one where no gradient is taken
    z = torch.tensor(-MARGINS, dtype=torch.float64, requires_grad=tracked)
    ours = log_softplus(z)
    assert ours.requires_grad == tracked
    for zi, value in zip(z.tolist(), ours.tolist(), strict=True):
        _check(value, mpmath.log(mpmath.log1p(mpmath.exp(mpmath.mpf(zi)))))


def test_log_softplus_gradient_is_exact_and_finite():
    z = torch.tensor(-MARGINS, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(log_softplus(z).sum(), z)
    for zi, gi in zip(z.tolist(), grad.tolist(), strict=True):
        zm = mpmath.mpf(zi)
        exact = mpmath.exp(zm) / (1 + mpmath.exp(zm)) / mpmath.log1p(mpmath.exp(zm))
        assert math.isfinite(gi)
        assert abs(gi - float(exact)) <= 1e-12 * float(exact) + 1e-300, (zi, gi, exact)


@pytest.mark.parametrize("log_loss", [-5000.0, -800.0, -50.0, -20.5, -19.5, -5.0, -1.0, -0.4])
def test_logistic_inverse_matches_mpmath(log_loss):
    loss = mpmath.exp(mpmath.mpf(log_loss))
    exact = -mpmath.log(mpmath.expm1(loss))
    assert abs(logistic_inverse_from_log(log_loss) - float(exact)) <= 1e-13 * abs(float(exact))


def test_inverse_undoes_the_loss():
    for name in ("exponential", "logistic"):
        loss = get_loss(name)
        for q in (0.3, 7.0, 250.0, 1e5):
            log_l = float(loss.log_per_sample(torch.tensor([[q]], dtype=torch.float64))[0])
            assert loss.inverse_from_log(log_l) == pytest.approx(q, rel=1e-12)


def test_sum_and_mean_beyond_float64_range():
    log_losses = torch.tensor([-3000.0, -3001.0, -2999.5], dtype=torch.float64)
    exact = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in log_losses.tolist()))
    assert log_sum(log_losses) == pytest.approx(float(exact), rel=1e-14)
    assert log_mean(log_losses) == pytest.approx(float(exact) - math.log(3), rel=1e-14)


def test_thresholds():
    assert get_loss("exponential").log_threshold == 0.0
    assert math.exp(get_loss("logistic").log_threshold) == pytest.approx(math.log(2))


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="cross_entropy"):
        get_loss("hinge")


@pytest.mark.parametrize(
    ("log10_value", "text"),
    [
        (-881.49485, "3.2e-882"),
        (0.0, "1.0e+00"),
        (-0.0000001, "1.0e+00"),
        (2.5, "3.2e+02"),
        (-299.99999999, "1.0e-300"),
        (None, "-"),
        (float("-inf"), "0"),
    ],
)
def test_format_log10(log10_value, text):
    assert format_log10(log10_value) == text


def test_format_log10_agrees_with_float_formatting_where_representable():
    for x in (3.7e-200, 1.0e-5, 9.96e-3, 123.0):
        assert format_log10(math.log10(x), 3) == f"{x:.2e}"
