"""Helpers of the Chizat & Bach reproduction: schedule, reference step, ratios, figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from marginlab.experiments.papers.chizat_bach import (
    boundary_figure,
    classification_error,
    clusters_problem,
    f1_ratio,
    increasing,
    rkhs_ratio,
    step_sizes,
    train_twonet,
)
from marginlab.measure.references.f1 import f1_max_margin
from marginlab.measure.references.rkhs import empirical_kernel, kernel_svm
from marginlab.models.two_layer import TwoLayer


def soft_min(model: TwoLayer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``S = -log sum_i exp(-q_i)``, the objective the reference code ascends."""
    q = (2.0 * y.double() - 1.0) * model(x)[:, 0]
    return -torch.logsumexp(-q, dim=0)


@pytest.fixture(scope="module")
def problem():
    return clusters_problem(24, 3, 2, 50)


def test_step_sizes_follow_the_reference_decay():
    eta = step_sizes(0.5, 100)
    assert eta.shape == (100,)
    assert eta[0] == pytest.approx(0.5 / math.sqrt(2))
    assert eta[99] == pytest.approx(0.5 / math.sqrt(101))
    assert np.all(np.diff(eta) < 0)


def test_one_step_is_m_times_the_gradient_of_the_soft_min(problem):
    width, stepsize = 7, 0.3
    net = train_twonet(problem.x, problem.y, width, stepsize=stepsize, niter=1, seeds=[5, 6])
    for r, seed in enumerate([5, 6]):
        model = TwoLayer(3, width, seed=seed).double()
        soft_min(model, problem.x[r], problem.y[r]).backward()
        eta = stepsize / math.sqrt(2)
        hidden, output = model.body.hidden.weight, model.output.weight[0]
        expected_a = hidden.detach() + eta * width * hidden.grad
        expected_b = output.detach() + eta * width * model.output.weight.grad[0]
        torch.testing.assert_close(net.first[r], expected_a, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(net.second[r], expected_b, rtol=1e-10, atol=1e-12)
        # The recorded margin is the one before the step, in the code's normalization.
        with torch.no_grad():
            q = (2.0 * problem.y[r].double() - 1.0) * model(problem.x[r])[:, 0]
            size = (hidden.pow(2).sum() + output.pow(2).sum()) / width
        assert net.margins[0, r] == pytest.approx(float(q.min() / size))


def test_output_only_starts_at_zero_and_keeps_the_first_layer(problem):
    width = 5
    net = train_twonet(problem.x, problem.y, width, train="output", stepsize=0.4, niter=3)
    start = TwoLayer(3, width, seed=0).body.hidden.weight.double()
    torch.testing.assert_close(net.first[0], start)
    assert np.isnan(net.margins[0]).all()  # b = 0: the reference's 0/0
    assert np.isfinite(net.best_margin()).all()
    one = train_twonet(problem.x, problem.y, width, train="output", stepsize=0.4, niter=1)
    # From b = 0 the first step is eta_1 * m * grad_b S, with beta_1 = 1.
    model = TwoLayer(3, width, seed=0).double()
    with torch.no_grad():
        model.output.weight.zero_()
    soft_min(model, problem.x[0], problem.y[0]).backward()
    expected = 0.4 / math.sqrt(2) * width * model.output.weight.grad[0]
    torch.testing.assert_close(one.second[0], expected, rtol=1e-10, atol=1e-12)


def test_trained_margins_stay_below_their_references(problem):
    both = train_twonet(problem.x, problem.y, 32, stepsize=2.0, niter=1500)
    output = train_twonet(problem.x, problem.y, 32, train="output", stepsize=2.0, niter=3000)
    for r in range(problem.replicas):
        f1 = f1_max_margin(problem.x[r], problem.y[r])
        ratio = f1_ratio(both.best_margin()[r], f1)
        assert 0.3 < ratio <= f1.upper / f1.lower + 1e-9
        svm = kernel_svm(empirical_kernel(output.first[r], problem.x[r], problem.x[r]),
                         problem.y[r])  # fmt: skip
        assert 0.3 < rkhs_ratio(float(output.best_margin()[r]), svm, 32) <= 1.0 + 1e-9


def test_f1_ratio_uses_the_code_normalization():
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 1])
    reference = f1_max_margin(x, y, tol=1e-8)  # gamma_1 = 1 / sqrt(2)
    assert f1_ratio(1 / (2 * math.sqrt(2)), reference) == pytest.approx(1.0, rel=1e-6)
    assert f1_ratio(0.25, reference) == pytest.approx(math.sqrt(2) / 2, rel=1e-6)


def test_rkhs_ratio_divides_by_sqrt_m_gamma_2():
    svm = kernel_svm(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([1, 0]))  # gamma_2 = 1
    assert rkhs_ratio(3.0, svm, 9) == pytest.approx(1.0)
    assert rkhs_ratio(1.5, svm, 9) == pytest.approx(0.5)


def test_increasing_with_slack():
    assert increasing([0.1, 0.5, 0.9])
    assert not increasing([0.1, 0.5, 0.45])
    assert increasing([0.1, 0.5, 0.45], slack=0.1)
    assert increasing([0.3])


def test_test_error_counts_ties_as_correct():
    model = TwoLayer(2, 4).double()
    with torch.no_grad():
        model.output.weight.zero_()
    x = torch.randn(6, 2, dtype=torch.float64)
    assert classification_error(model, x, torch.zeros(6, dtype=torch.long)) == 0.0
    with torch.no_grad():
        model.output.weight.fill_(1.0)  # f >= 0 everywhere, > 0 where a unit is active
    y = torch.zeros(6, dtype=torch.long)
    expected = float((model(x)[:, 0] > 0).double().mean())
    assert classification_error(model, x, y) == pytest.approx(expected)


def test_clusters_problem_draws_one_distribution_per_replica():
    p = clusters_problem(30, 4, 3, 10)
    assert p.x.shape == (3, 30, 4) and p.x_test.shape == (3, 10, 4)
    assert torch.all(p.x[:, :, 0] == 1.0)
    assert not torch.equal(p.x[0], p.x[1])


def test_boundary_figure_draws_each_net_on_the_plane(problem):
    nets = {
        "both": train_twonet(problem.x, problem.y, 6, niter=5),
        "output": train_twonet(problem.x, problem.y, 6, train="output", niter=5),
    }
    fig = boundary_figure(nets, problem.x[0], problem.y[0])
    axes = fig.get_axes()
    assert [ax.get_title().split(",")[0] for ax in axes] == ["both", "output"]
    shown = np.concatenate([c.get_offsets() for c in axes[0].collections[-2:]])
    assert sorted(map(tuple, shown)) == sorted(map(tuple, problem.x[0, :, 1:3].numpy()))
