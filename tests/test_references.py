"""Reference max-margin solutions, and the Soudry / Lyu-Li convergence of linear models."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from marginlab import load_run, train
from marginlab.data import load_dataset
from marginlab.losses import get_loss
from marginlab.measure.observers import alignment
from marginlab.measure.rates import late_time_slope, rate_values, rates_table
from marginlab.measure.references import (
    arccos_kernel,
    direction_error,
    empirical_kernel,
    f1_max_margin,
    kernel_svm,
    least_distance,
    linear_svm,
    nonconvex_max_margin,
    sphere_grid,
    sphere_maximum,
)
from marginlab.models import TwoLayer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors: a second intra-op thread only adds contention on a busy machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def primal_svm(g):
    """Independent reference: ``min ||w||^2 s.t. g w >= 1`` by SLSQP."""
    result = scipy.optimize.minimize(
        lambda w: w @ w,
        np.ones(g.shape[1]),
        jac=lambda w: 2 * w,
        constraints=[{"type": "ineq", "fun": lambda w: g @ w - 1, "jac": lambda w: g}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return result.x


# --- linear SVM ------------------------------------------------------------------------------


def test_linear_svm_matches_an_independent_qp_solve():
    data = load_dataset("gaussians", n=60, d=4, margin=0.3)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    result = linear_svm(x, y)
    reference = primal_svm((2 * y - 1)[:, None] * x)
    assert result.w == pytest.approx(reference, rel=1e-6, abs=1e-8)
    assert result.margin >= data.info["w_star_margin"]  # w* is feasible, the SVM is best
    assert np.min((2 * y - 1) * (x @ result.w)) == pytest.approx(1.0, abs=1e-10)


def test_multiclass_svm_matches_an_independent_qp_solve():
    data = load_dataset("digits", classes=[0, 1, 2], n_train=30)
    x, y = data.x_train.flatten(1).numpy(), data.y_train.numpy()
    result = linear_svm(x, y, n_outputs=3)
    rows = []
    for xn, yn in zip(x, y, strict=True):
        for j in range(3):
            if j != yn:
                row = np.zeros((3, x.shape[1]))
                row[yn], row[j] = xn, -xn
                rows.append(row.ravel())
    reference = primal_svm(np.array(rows)).reshape(3, -1)
    assert np.linalg.norm(result.w - reference) < 1e-5 * np.linalg.norm(reference)
    assert result.dual.shape == (30, 2)


def test_least_distance_refuses_infeasible_constraints():
    with pytest.raises(ValueError, match="separable"):
        least_distance(np.array([[1.0], [-1.0]]), np.array([1.0, 1.0]))


def test_direction_error():
    assert direction_error(np.array([1.0, 1.0]), np.array([3.0, 3.0])) == pytest.approx(0.0)
    assert direction_error(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="end_to_end"):
        direction_error(np.ones(3), np.ones(2))


# --- gradient descent on linear models (Soudry et al.; Lyu & Li B6) -------------------------


def linear_run(tmp_path, model, schedule, alpha):
    config = {
        "name": "soudry",
        "seed": 0,
        "loss": "logistic",
        "data": {"name": "gaussians", "params": {"n": 100, "d": 5, "margin": 0.2}},
        "model": model,
        "train": {
            "schedule": schedule,
            "alpha": alpha,
            "max_epochs": 20000,
            "target_log10_loss": -50.5,
        },
        "log": {"every": 100000, "checkpoint_decades": 5},
    }
    return load_run(train(config, tmp_path / "run", progress=False))


@pytest.mark.parametrize(
    ("model", "alpha"),
    # Normalized GD (eta = alpha / L); the depth-2 network needs a small alpha to stay
    # below the edge of stability down to 1e-50, where its curvature has grown.
    [({"kind": "linear"}, 1.0), ({"kind": "deep_linear", "depth": 2, "width": 3}, 0.002)],
    ids=["linear", "deep_linear"],
)
def test_gradient_descent_converges_to_the_svm_and_aligns(tmp_path, model, alpha):
    run = linear_run(tmp_path, model, "normalized", alpha)
    x, y = run.load_data()
    svm = linear_svm(x, y)
    rows = []
    for checkpoint in run.checkpoints[1:]:  # skip the initialization
        net = run.load_model(checkpoint.epoch)
        error = direction_error(net.end_to_end().detach(), svm.w)
        beta = alignment(net, x, y, get_loss("logistic"))
        rows.append((checkpoint.log10_loss_mean, error, 1.0 - beta))
    levels = [round(level) for level, _, _ in rows]
    assert levels[0] == -5 and levels[-1] <= -50
    errors = [error for _, error, _ in rows]
    assert errors[-1] < 1e-2  # measured 4.6e-3 (linear), 4.8e-3 (depth 2)
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))  # keeps falling
    at = {round(level): gap for level, _, gap in rows}
    assert at[-5] / at[-50] >= 10  # measured 17x (linear), 13x (depth 2)
    order = run.load_model("last").homogeneity_order
    # The network's normalized margin approaches the SVM's, in its own normalization.
    final = run.metrics["normalized_margin"].iloc[-1]
    assert svm.network_margin(order) * 0.95 < final <= svm.network_margin(order) * (1 + 1e-12)


# --- F1 --------------------------------------------------------------------------------------


def test_exact_sphere_oracle_beats_a_fine_grid():
    rng = np.random.default_rng(0)
    for d, grid in ((2, 200_000), (3, 400_000)):
        x = rng.standard_normal((25, d))
        coeff = rng.standard_normal(25)
        _, values, exact = sphere_maximum(x, coeff, top=1)
        brute = float((np.maximum(sphere_grid(d, grid) @ x.T, 0) @ coeff).max())
        assert exact
        # The exact maximum is never below a sampled value, and a fine grid comes close.
        assert brute <= values[0] + 1e-12
        assert values[0] - brute < 2e-3 * abs(values[0])


def test_f1_grid_and_column_generation_agree_in_d3():
    data = load_dataset("clusters", n=100, d=3, k=4, test_n=0)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    cg = f1_max_margin(x, y, tol=1e-4)
    grid = f1_max_margin(x, y, method="grid", grid_size=20000)
    assert cg.certified and grid.certified
    assert cg.lower <= cg.upper and cg.gap <= 1e-3  # certified: measured 9e-5
    assert abs(grid.lower - cg.lower) <= 0.01 * cg.lower  # measured 0.8%
    # A grid solution is feasible, so it never beats the certified upper bound.
    assert grid.lower <= cg.upper
    assert np.sum(np.abs(cg.weights)) == pytest.approx(1.0)
    outputs = (2 * y - 1) * (np.maximum(x @ cg.directions.T, 0) @ cg.weights)
    assert outputs.min() == pytest.approx(cg.lower, rel=1e-7)


def test_f1_with_an_inexact_oracle_keeps_its_upper_value_above_the_lower_bound():
    # In d = 8 the oracle is an ascent; with few starts it misses the maximum of early duals.
    # Those values are no bound on gamma_1, so they must not end the column generation.
    data = load_dataset("clusters", n=64, d=8, k=3, test_n=0)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    result = f1_max_margin(
        x, y, tol=1e-3, max_rounds=300, initial=50, oracle_starts=5, oracle_iterations=10
    )
    assert not result.certified
    assert result.lower <= result.upper <= (1 + 1e-3) * result.lower
    outputs = (2 * y - 1) * (np.maximum(x @ result.directions.T, 0) @ result.weights)
    assert outputs.min() == pytest.approx(result.lower, rel=1e-7)


def test_f1_on_two_orthogonal_points():
    # One neuron on the bisector: gamma_1 = 1 / sqrt(2) (chizat-vardi.md V4).
    result = f1_max_margin(np.eye(2), np.array([1, 1]), tol=1e-6)
    assert result.lower <= 2**-0.5 <= result.upper
    assert result.lower == pytest.approx(2**-0.5, rel=1e-6)
    assert result.network_margin(width=1) == pytest.approx(1 / (2 * 2**0.5), rel=1e-6)


# --- RKHS ------------------------------------------------------------------------------------


def test_arccos_kernel_matches_monte_carlo():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.standard_normal((3, 4)), [[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]])
    closed = arccos_kernel(x, x)
    total, squares, m = 0.0, 0.0, 0
    for _ in range(10):
        features = np.maximum(rng.standard_normal((100_000, 4)) @ x.T, 0.0)
        products = features[:, :, None] * features[:, None, :]
        total, squares, m = total + products.sum(0), squares + (products**2).sum(0), m + 100_000
    mean = total / m
    stderr = np.sqrt((squares / m - mean**2) / m)
    zero = stderr == 0  # opposite points: relu(a.x) relu(-a.x) = 0 exactly
    assert np.all(np.abs(mean - closed)[~zero] <= 4 * stderr[~zero])
    assert np.allclose(closed[zero], 0.0, atol=1e-15)
    assert np.diag(closed) == pytest.approx(np.sum(x**2, axis=1) / 2, rel=1e-14)


def test_kernel_svm_matches_an_independent_dual_solve():
    data = load_dataset("clusters", n=40, d=5, test_n=0)
    x, y = data.x_train.numpy(), data.y_train.numpy()
    kernel = arccos_kernel(x, x)
    result = kernel_svm(kernel, y)
    # The primal in the coordinates of a Cholesky factor (K = F F^T), solved by SLSQP.
    features = np.linalg.cholesky(kernel)
    w = primal_svm((2 * y - 1)[:, None] * features)
    assert result.margin == pytest.approx(1 / np.linalg.norm(w), rel=1e-6)
    assert result.min_output == pytest.approx(1.0, abs=1e-9)


def test_empirical_kernel_svm_is_the_linear_svm_of_the_features():
    # Output-layer training of a mean-field net is a linear model in b with features
    # relu(a_j . x) / m: its SVM margin is gamma_2(K_m) / sqrt(m).
    data = load_dataset("clusters", n=30, d=3, test_n=0)
    x, y = data.x_train, data.y_train
    net = TwoLayer(3, 200, train="output", seed=3)
    weights = net.body.hidden.weight.detach().double()
    kernel = kernel_svm(empirical_kernel(weights, x, x), y)
    features = torch.relu(x @ weights.T) / 200
    assert linear_svm(features, y).margin == pytest.approx(kernel.network_margin(200), rel=1e-8)


# --- nonconvex -------------------------------------------------------------------------------


def test_nonconvex_search_finds_the_svm_for_a_linear_model():
    data = load_dataset("gaussians", n=30, d=3, margin=0.3)
    model = torch.nn.Linear(3, 1, bias=False).double()
    result = nonconvex_max_margin(model, data.x_train, data.y_train, order=1, n_starts=3)
    assert result.margin == pytest.approx(linear_svm(data.x_train, data.y_train).margin, rel=1e-7)


# --- rates -----------------------------------------------------------------------------------


def test_rate_values_in_log_space_agree_with_direct_formulas():
    # Representable values: compare with the formulas evaluated directly.
    t, loss, rho, order = 1e6, 3e-9, 2.5, 3.0
    loss_rate, norm_rate = rate_values(math.log10(t), math.log10(loss), rho, order)
    assert loss_rate == pytest.approx(loss * t * math.log(t) ** (2 - 2 / order), rel=1e-12)
    assert norm_rate == pytest.approx(rho**order / math.log(1 / loss), rel=1e-12)
    # Far beyond float64: T = 1e400, Loss = 1e-2000 still give finite ratios.
    loss_rate, norm_rate = rate_values(400.0, -403.0, 10.0, 2.0)
    assert loss_rate == pytest.approx(1e-3 * 400 * math.log(10), rel=1e-12)
    assert rate_values(-1.0, -5.0, 1.0, 1.0)[0] is None  # T < 1: log T < 0, undefined


def test_rates_table_and_slope_on_the_theoretical_curve():
    order = 2.0
    log_t = np.linspace(2, 300, 40)
    # Loss = 1 / (T (log T)^(2 - 2/L)) exactly: loss_rate is 1, the slope tends to -1.
    log_loss = -log_t - (2 - 2 / order) * np.log10(log_t * math.log(10))
    rows = [
        {"epoch": i, "log10_accumulated_lr": a, "log10_loss_sum": b, "param_norm": 3.0}
        for i, (a, b) in enumerate(zip(log_t, log_loss, strict=True))
    ]
    table = rates_table(rows, order)
    assert table["loss_rate"].to_numpy() == pytest.approx(1.0, rel=1e-10)
    slope = late_time_slope(rows, fraction=0.25)
    assert -1.01 < slope < -1.0
    with pytest.raises(ValueError, match="param_norm"):
        rates_table([{"log10_accumulated_lr": 1.0, "log10_loss_sum": -1.0}], order)
    with pytest.raises(ValueError, match="fraction"):
        late_time_slope(rows, fraction=0.0)
