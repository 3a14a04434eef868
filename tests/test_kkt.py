"""KKT certificates (Lyu & Li B7): exact points, perturbed points, dense vs matrix-free."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from marginlab.losses import get_loss
from marginlab.measure.kkt import KKT_OBSERVER_KEYS, kkt_certificates, nnls_gram
from marginlab.measure.margins import pairwise_margins
from marginlab.measure.observers import alignment, run_observer
from marginlab.models import CNN, MLP


def linear_model(weights):
    model = torch.nn.Linear(len(weights), 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights], dtype=torch.float64))
    return model


# x1 = (2, 0) with label +1 and x2 = (0, 1) with label -1: the SVM is w = (1/2, -1) with
# dual alpha = (1/4, 1) (both constraints active), worked out by hand.
SVM_X = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
SVM_Y = torch.tensor([1, 0])


def test_exact_kkt_point_has_zero_certificates_and_the_svm_multipliers():
    # Any positive scale of the SVM is the same point after rescaling to min margin 1.
    result = kkt_certificates(linear_model([1.5, -3.0]), SVM_X, SVM_Y, order=1)
    assert result.q_min == pytest.approx(3.0)
    assert result.normalized_margin == pytest.approx(1 / math.sqrt(1.25), rel=1e-14)
    for cert in result.certificates:
        assert cert.eps_rel < 1e-14 and cert.delta == 0.0
        assert cert.constraints == [(0, 0), (1, 1)]
        assert cert.multipliers == pytest.approx([0.25, 1.0], rel=1e-12)
    assert result.euler_error < 1e-14


def test_perturbed_point_has_positive_certificates():
    result = kkt_certificates(linear_model([0.6, -1.0]), SVM_X, SVM_Y, order=1, taus=[1e-3, 1])
    tight, loose = result.certificates
    # At tau = 1e-3 only x2 is active, and theta is not along its gradient (0, -1).
    assert tight.n_active == 1 and tight.eps_rel == pytest.approx(0.6 / math.hypot(0.6, 1.0))
    # At tau = 1 both are active: eps = 0 is bought with delta = lambda_1 (s_1 - 1) > 0.
    assert loose.n_active == 2 and loose.eps_rel < 1e-14 and loose.delta > 0.01
    assert result.loss_weights.eps_rel > 1e-3


def random_classifier(model, x):
    """Labels that the model fits (q_min > 0), so any random network can be certified."""
    with torch.no_grad():
        return model(x).argmax(dim=1)


def confident_subset(model, x, keep):
    """The ``keep`` samples the model classifies most confidently, with their labels.

    Dropping near-ties keeps the margins within a small factor of each other, so that many
    constraints are near-active.
    """
    y = random_classifier(model, x)
    with torch.no_grad():
        q = pairwise_margins(model(x), y).min(dim=1).values
    chosen = torch.argsort(q)[-keep:]
    return x[chosen], y[chosen]


def independent_certificate(model, x, y, order, tau):
    """Reference: autograd Jacobian of all margins, scipy NNLS on J_A^T (no Gram, no vmap)."""
    params = [p for p in model.parameters() if p.requires_grad]
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    shapes = [p.shape for p in params]

    def margins(flat):
        chunks, start = {}, 0
        for (name, p), shape in zip(model.named_parameters(), shapes, strict=True):
            chunks[name] = flat[start : start + p.numel()].view(shape)
            start += p.numel()
        out = torch.func.functional_call(model, chunks, (x,))
        return pairwise_margins(out, y).reshape(-1)

    s = margins(theta).detach()
    q_min = float(s.min())
    scale = q_min ** (-1.0 / order)
    jac = torch.autograd.functional.jacobian(margins, theta * scale)
    active = (s / q_min <= 1 + tau).numpy()
    theta_t = (theta * scale).numpy()
    lam, residual = scipy.optimize.nnls(jac.numpy()[active].T, theta_t)
    return residual / np.linalg.norm(theta_t), lam


@pytest.mark.parametrize(
    "build",
    [
        lambda: MLP(64, [24, 12], 10, seed=1),
        lambda: CNN("conv3x3-4,maxpool,conv3x3-6,maxpool,fc10", (1, 8, 8), seed=2),
    ],
    ids=["mlp", "cnn"],
)
def test_matrix_free_agrees_with_dense_and_with_scipy_nnls(build):
    from marginlab.data import load_dataset

    x = load_dataset("digits", n_train=120).x_train
    model = build().double()
    inputs, y = confident_subset(model, x if isinstance(model, CNN) else x.flatten(1), 40)
    taus = [0.3, 3.0]  # loose, so that the NNLS has many constraints to choose from
    dense = kkt_certificates(model, inputs, y, "cross_entropy", taus=taus, method="dense")
    free = kkt_certificates(model, inputs, y, "cross_entropy", taus=taus, method="matrix_free")
    for d, f, tau in zip(dense.certificates, free.certificates, taus, strict=True):
        assert d.method == "dense" and f.method == "matrix_free" and d.converged and f.converged
        assert d.n_active == f.n_active > 5
        assert f.eps_rel == pytest.approx(d.eps_rel, rel=1e-7)
        assert f.multipliers == pytest.approx(
            d.multipliers, rel=1e-5, abs=1e-9 * max(d.multipliers)
        )
        reference, lam = independent_certificate(model, inputs, y, dense.order, tau)
        assert d.eps_rel == pytest.approx(reference, rel=1e-7)
        assert sorted(d.multipliers) == pytest.approx(sorted(lam), rel=1e-5, abs=1e-9 * lam.max())
    assert dense.euler_error < 1e-12 and free.euler_error < 1e-12


def test_auto_method_switches_to_matrix_free_under_a_small_budget():
    model = MLP(10, [8], 3, seed=0).double()
    x = torch.randn(30, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = random_classifier(model, x)
    roomy = kkt_certificates(model, x, y, taus=[5.0])
    tight = kkt_certificates(model, x, y, taus=[5.0], memory_budget=8 * 50)
    assert roomy.certificates[0].method == "dense"
    assert tight.certificates[0].method == "matrix_free"
    assert tight.certificates[0].eps_rel == pytest.approx(roomy.certificates[0].eps_rel, rel=1e-8)


def test_loss_weight_certificate_is_sqrt_one_minus_beta_squared():
    model = MLP(10, [8], 3, seed=4).double()
    x = torch.randn(40, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = random_classifier(model, x)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # a larger scale: the loss weights concentrate on the support
    loss = get_loss("cross_entropy")
    result = kkt_certificates(model, x, y, loss)
    beta = alignment(model, x, y, loss)
    assert result.beta == pytest.approx(beta, rel=1e-10)
    assert result.loss_weights.eps_rel == pytest.approx(math.sqrt(1 - beta**2), rel=1e-8)
    assert result.loss_weights.n_active == 40 * 2


def test_a_wrong_order_shows_in_the_euler_error():
    model = MLP(10, [8], 3, seed=0).double()
    x = torch.randn(30, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = random_classifier(model, x)
    assert kkt_certificates(model, x, y).euler_error < 1e-12
    wrong = kkt_certificates(model, x, y, order=1)
    # Rescaled by q_min^-1 instead of q_min^-1/2: J theta~ = 2 s(theta~) = (2 / q_min) s~.
    assert wrong.euler_error == pytest.approx(abs(2 / wrong.q_min - 1), rel=1e-10)
    assert wrong.euler_error > 0.1


def test_errors_name_the_argument():
    x, y = SVM_X, SVM_Y
    with pytest.raises(ValueError, match="q_min"):
        kkt_certificates(linear_model([-1.0, 0.0]), x, y, order=1)
    with pytest.raises(ValueError, match="method"):
        kkt_certificates(linear_model([1.0, -2.0]), x, y, order=1, method="sparse")
    with pytest.raises(ValueError, match="order"):
        kkt_certificates(torch.nn.Linear(2, 1, bias=False).double(), x, y)
    with pytest.raises(KeyError, match="tau"):
        kkt_certificates(linear_model([1.0, -2.0]), x, y, order=1, taus=[0.1]).certificate(0.2)


def test_nnls_gram_matches_scipy_on_a_random_problem():
    rng = np.random.default_rng(0)
    jac = rng.standard_normal((12, 7))  # more constraints than dimensions: a singular Gram
    theta = rng.standard_normal(7)
    gram = torch.from_numpy(jac @ jac.T)
    lam, _, converged = nnls_gram(lambda j: gram[:, j], torch.from_numpy(jac @ theta))
    reference, residual = scipy.optimize.nnls(jac.T, theta)
    assert converged
    assert np.linalg.norm(theta - jac.T @ lam.numpy()) == pytest.approx(residual, rel=1e-9)


def test_kkt_observer_keys_and_undefined_before_separation():
    model = MLP(10, [8], 3, seed=0).double()
    x = torch.randn(30, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = random_classifier(model, x)
    loss = get_loss("cross_entropy")
    values = run_observer("kkt", model, x, y, loss, {"q_min": 0.1}, tau=0.5)
    assert set(values) == set(KKT_OBSERVER_KEYS)
    expected = kkt_certificates(model, x, y, loss, taus=[0.5])
    assert values["kkt_eps_rel"] == expected.certificates[0].eps_rel
    assert values["kkt_active"] == expected.certificates[0].n_active
    undefined = run_observer("kkt", model, x, y, loss, {"q_min": -0.1})
    assert all(v is None for v in undefined.values())
