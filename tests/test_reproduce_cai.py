"""Cai et al. reproduction: phase detection, monotonicity measures, the model and GD step."""

import math

import numpy as np
import pytest
import torch

from marginlab.experiments.papers.cai import (
    KAPPA,
    SignedTwoLayer,
    Trajectory,
    best_monotone,
    curvature_constant,
    detect_phases,
    five_points,
    gradient_descent,
    loss_increases,
    margin_window,
    max_drawdown,
    monotonicity,
)
from marginlab.models.activations import make_activation


def _run(losses, q_min=None, eta=1.0):
    losses = np.asarray(losses, dtype=float)
    q = np.zeros(len(losses)) if q_min is None else np.asarray(q_min, dtype=float)
    return Trajectory(eta, 4, np.log(losses), q, np.ones(len(losses)))


def signed_two_layer(weight: torch.Tensor, x: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """Equation (2) written out independently: (1/m) sum_j (-1)^j phi_c(<w_j, x>)."""
    m = weight.shape[0]
    signs = torch.tensor([(-1.0) ** j for j in range(m)], dtype=weight.dtype)
    z = x @ weight.T
    return (c * z + (1.0 - c) * torch.nn.functional.softplus(z)) @ signs / m


def test_phases_of_a_scripted_eos_sequence():
    # up at steps 1, 3 and 5, then monotone; eta*C = 10, so the threshold is L <= 0.1
    losses = [0.7, 2.0, 1.0, 3.0, 0.5, 0.6, 0.2, 0.09, 0.05, 0.01]
    p = detect_phases(np.log(losses), eta=5.0, curvature=2.0)
    assert p.increases == 3
    assert p.last_increase == 5
    assert p.threshold_step == 7
    assert p.increases_after_threshold == 0
    assert p.stable_from == 5 and p.phase2_start == 7
    assert p.steps == len(losses) - 1


def test_an_increase_after_the_threshold_is_counted():
    # the risk dips below 1/(eta C) = 0.1 at step 2, then rises at step 3: the claim fails
    losses = [1.0, 0.5, 0.05, 0.2, 0.01]
    p = detect_phases(np.log(losses), eta=1.0, curvature=10.0)
    assert p.threshold_step == 2
    assert p.last_increase == 3
    assert p.increases_after_threshold == 1


def test_monotone_sequence_and_unreached_threshold():
    p = detect_phases(np.log([0.7, 0.6, 0.5]), eta=100.0, curvature=1.0)
    assert (p.increases, p.last_increase, p.threshold_step) == (0, None, None)
    assert p.stable_from == 0 and p.phase2_start == 0
    assert p.increases_after_threshold == 0


def test_the_threshold_level_scales_with_eta():
    log_losses = np.log([1.0, 0.3, 0.05, 0.03, 0.005])
    steps = [detect_phases(log_losses, eta, 1.0).threshold_step for eta in (1.0, 10.0, 100.0)]
    assert steps == [0, 2, 4]


def test_rounding_sized_rises_are_not_increases():
    log_losses = np.array([-10.0, -10.0 + 1e-14, -10.5, -10.5 + 1e-6])
    assert loss_increases(log_losses).tolist() == [3]
    assert loss_increases(log_losses, tol=0.0).tolist() == [1, 3]


def test_drawdown_and_nearly_increasing():
    assert max_drawdown([]) == 0.0
    assert max_drawdown([3.0, 1.0, 2.0]) == pytest.approx(2.0)
    m = monotonicity([0.0, 0.5, 0.45, 1.0])
    assert m.rise == pytest.approx(1.0)
    assert m.relative_drawdown == pytest.approx(0.05)
    assert m.decreasing_steps == 1
    assert m.nearly_increasing(0.05) and not m.nearly_increasing(0.04)
    falling = monotonicity([1.0, 0.9, 0.95])
    assert falling.rise < 0 and not falling.nearly_increasing(10.0)
    assert not monotonicity([0.0, float("nan"), 1.0]).nearly_increasing(1.0)


def test_margin_window_starts_in_phase_2_with_positive_margin():
    run = _run([1.0, 2.0, 0.5, 0.4, 0.3, 0.2], q_min=[-1.0, 0.1, -0.2, -0.1, 0.3, 0.4])
    p = detect_phases(run.log_loss, eta=1.0, curvature=1.0)  # threshold at step 0
    assert p.phase2_start == 0
    assert margin_window(run, p) == 1
    p2 = detect_phases(run.log_loss, eta=1.0, curvature=1e3)  # never below: use tau = 1
    assert p2.threshold_step is None and p2.phase2_start == 1
    assert margin_window(run, p2) == 1
    later = detect_phases(run.log_loss, eta=1.0, curvature=4.0)  # 4 L <= 1 from step 5
    assert later.threshold_step == 5 and margin_window(run, later) == 5


def test_best_monotone_ignores_oscillating_and_diverged_runs():
    slow = _run([1.0, 0.5, 0.4], eta=1.0)
    fast_but_bumpy = _run([1.0, 1.2, 0.01], eta=2.0)
    diverged = Trajectory(3.0, 4, np.log([1.0, 0.001]), np.zeros(2), np.ones(2), diverged=True)
    assert best_monotone([slow, fast_but_bumpy, diverged]) is slow
    assert best_monotone([fast_but_bumpy]) is None


def test_signed_two_layer_is_equation_2():
    weight = torch.tensor([[1.0, 2.0], [-0.5, 1.0], [0.3, 0.0]], dtype=torch.float64)
    net = SignedTwoLayer(weight)
    x = torch.tensor([[0.2, -0.4], [1.0, 1.0]], dtype=torch.float64)
    phi = make_activation("leaky_softplus", c=0.5)
    z = x @ weight.T
    expected = (phi(z[:, 0]) - phi(z[:, 1]) + phi(z[:, 2])) / 3
    assert torch.allclose(net(x)[:, 0], expected)
    assert [p.shape for p in net.parameters()] == [weight.shape]  # only the first layer


def test_euler_defect_constant_bounds_the_network():
    # |<grad f, W> - f| <= kappa (near-1-homogeneity) for the model, at random weights
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    worst = 0.0
    for scale in (0.1, 1.0, 10.0):
        net = SignedTwoLayer(scale * torch.randn(6, 3, generator=generator, dtype=torch.float64))
        out = net(x)[:, 0]
        for i in range(len(x)):
            (grad,) = torch.autograd.grad(out[i], [net.weight], retain_graph=True)
            worst = max(worst, abs(float(((grad * net.weight).sum() - out[i]).detach())))
    assert 0 < worst <= KAPPA + 1e-12


def test_curvature_constant_bounds_the_hessian_relative_to_the_risk():
    x, y = five_points()
    radius = float(x.norm(dim=1).max())
    c = curvature_constant(2, radius)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        weight = torch.randn(2, 3, generator=generator, dtype=torch.float64)

        def risk(w):
            margins = (2.0 * y - 1.0) * signed_two_layer(w, x)
            return torch.nn.functional.softplus(-margins).mean()

        hessian = torch.autograd.functional.hessian(risk, weight).reshape(6, 6)
        top = float(torch.linalg.eigvalsh(hessian).abs().max())
        assert top <= c * float(risk(weight)) * (1 + 1e-9)


def test_gradient_descent_matches_a_plain_autograd_step():
    x, y = five_points()
    run = gradient_descent(x, y, width=2, eta=0.7, steps=2, init_scale=0.3, seed=4)
    generator = torch.Generator().manual_seed(4)
    weight = (0.3 * torch.randn(2, 3, generator=generator, dtype=torch.float64)).requires_grad_()
    assert run.norm[0] == pytest.approx(float(weight.detach().norm()), rel=1e-12)
    sign = 2.0 * y.double() - 1.0
    for t in range(3):
        margins = sign * signed_two_layer(weight, x)
        risk = torch.nn.functional.softplus(-margins).mean()
        assert run.log_loss[t] == pytest.approx(math.log(float(risk.detach())), rel=1e-12)
        assert run.q_min[t] == pytest.approx(float(margins.detach().min()), rel=1e-12)
        (grad,) = torch.autograd.grad(risk, [weight])
        weight = (weight - 0.7 * grad).detach().requires_grad_()


def test_large_step_oscillates_then_stabilizes_on_the_five_points():
    x, y = five_points()
    run = gradient_descent(x, y, width=2, eta=100.0, steps=600, init_scale=0.0)
    p = detect_phases(run.log_loss, run.eta, curvature_constant(2, float(x.norm(dim=1).max())))
    assert p.increases >= 2
    assert p.last_increase is not None and p.last_increase < 400
    small = gradient_descent(x, y, width=2, eta=1.0, steps=200, init_scale=0.0)
    assert len(loss_increases(small.log_loss)) == 0
