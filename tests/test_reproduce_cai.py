"""Cai et al. reproduction: the model and its constants, its GD runs (through ``fit``) against
plain autograd steps, the restart threshold, and re-judging altered measurements."""

import json
import math

import numpy as np
import pytest
import torch

from marginlab.experiments.claims import FAIL, PASS
from marginlab.experiments.papers import cai
from marginlab.experiments.papers.cai import (
    KAPPA,
    SignedTwoLayer,
    Snapshots,
    critical_level,
    curvature_constant,
    five_points,
    initial_weights,
    last_increase,
    two_layer_gd,
)
from marginlab.experiments.reproduce import reproduce
from marginlab.models.activations import make_activation


def signed_two_layer(weight: torch.Tensor, x: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """Equation (2) written out independently: (1/m) sum_j (-1)^j phi_c(<w_j, x>)."""
    m = weight.shape[0]
    signs = torch.tensor([(-1.0) ** j for j in range(m)], dtype=weight.dtype)
    z = x @ weight.T
    return (c * z + (1.0 - c) * torch.nn.functional.softplus(z)) @ signs / m


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
    c = curvature_constant(2, float(x.norm(dim=1).max()))
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        weight = torch.randn(2, 3, generator=generator, dtype=torch.float64)

        def risk(w):
            margins = (2.0 * y - 1.0) * signed_two_layer(w, x)
            return torch.nn.functional.softplus(-margins).mean()

        hessian = torch.autograd.functional.hessian(risk, weight).reshape(6, 6)
        top = float(torch.linalg.eigvalsh(hessian).abs().max())
        assert top <= c * float(risk(weight)) * (1 + 1e-9)


def _plain_gd(weight, x, y, eta, steps):
    """Independent reference: plain autograd GD on the mean logistic loss."""
    weight = weight.clone().requires_grad_()
    sign = 2.0 * y.double() - 1.0
    losses, q_mins = [], []
    for _ in range(steps + 1):
        margins = sign * signed_two_layer(weight, x)
        risk = torch.nn.functional.softplus(-margins).mean()
        losses.append(math.log(float(risk.detach())))
        q_mins.append(float(margins.detach().min()))
        (grad,) = torch.autograd.grad(risk, [weight])
        weight = (weight - eta * grad).detach().requires_grad_()
    return np.array(losses), np.array(q_mins)


def test_gd_follows_plain_autograd_gd_for_each_run():
    x, y = five_points()
    generator = torch.Generator().manual_seed(4)
    starts = 0.3 * torch.randn(2, 2, 3, generator=generator, dtype=torch.float64)
    runs = two_layer_gd(x, y, starts, [0.7, 5.0], 6)
    for j, eta in enumerate((0.7, 5.0)):
        losses, q_mins = _plain_gd(starts[j], x, y, eta, 6)
        assert runs.log_loss[:, j] == pytest.approx(losses, rel=1e-11)
        assert runs.q_min[:, j] == pytest.approx(q_mins, rel=1e-11)
        assert runs.norm[0, j] == pytest.approx(float(starts[j].norm()), rel=1e-12)


def test_snapshots_hold_the_weights_at_each_level():
    x, y = five_points()
    levels = [math.log(0.6), math.log(0.5), math.log(0.45)]
    shots = Snapshots(levels)
    runs = two_layer_gd(x, y, initial_weights(2, 3, 1, 0.1, 0), [3.0], 400, snapshots=shots)
    assert len(shots.weights) == 3
    assert all(v <= level for v, level in zip(shots.log_loss, levels, strict=True))
    for weight, value in zip(shots.weights, shots.log_loss, strict=True):
        again = two_layer_gd(x, y, weight[None], [3.0], 0)
        assert again.log_loss[0, 0] == pytest.approx(value, rel=1e-12)
        first = int(np.argmax(runs.log_loss[:, 0] <= value))
        assert runs.log_loss[first, 0] == value  # kept at the first step that reached it


def test_last_increase_and_the_critical_level():
    assert last_increase(np.log([1.0, 2.0, 0.5, 0.7, 0.1])) == 3
    assert last_increase(np.log([1.0, 1.0 + 1e-15, 0.5])) == 0  # rounding is not a rise
    levels = np.log([0.5, 0.2, 0.1, 0.05, 0.02])
    assert math.exp(critical_level(levels, np.array([0, 0, 1, 1, 1]))) == pytest.approx(0.1)
    # a stable island above an unstable checkpoint does not count
    assert math.exp(critical_level(levels, np.array([1, 0, 1, 0, 1]))) == pytest.approx(0.02)
    assert critical_level(levels, np.ones(5)) is None
    assert critical_level(levels, np.array([1, 1, 1, 1, 0])) is None


def test_restarts_find_a_threshold_that_scales_like_one_over_eta():
    # XOR with 8 points: restarts of GD with step eta from checkpoints of a monotone run
    x, y = cai.xor_data({"n": 8, "noise": 0.1})
    c = curvature_constant(4, 1.0)
    shots = Snapshots([math.log(10) * (-0.2 - k / 10) for k in range(40)])
    two_layer_gd(x, y, initial_weights(4, 2, 1, 0.1, 0), [16.0 / c], 2000, snapshots=shots)
    stack = torch.stack(shots.weights)
    found = {}
    for scaled in (2.0**8, 2.0**12):
        restart = two_layer_gd(x, y, stack, [scaled / c] * len(stack), 50)
        stable = [last_increase(restart.log_loss[:, j]) == 0 for j in range(len(stack))]
        found[scaled] = math.exp(critical_level(np.array(shots.log_loss), np.array(stable)))
    assert found[2.0**8] / found[2.0**12] == pytest.approx(16.0, rel=0.5)  # L_c ~ 1/eta
    assert all(level > 1.0 / scaled for scaled, level in found.items())  # above 1/(eta C)


def test_large_step_oscillates_then_stabilizes_on_the_five_points():
    x, y = five_points()
    zero = torch.zeros(1, 2, 3, dtype=torch.float64)
    large = two_layer_gd(x, y, zero, [100.0], 600).log_loss[:, 0]
    assert cai.oscillation(large).passed and 0 < last_increase(large) < 300
    small = two_layer_gd(x, y, zero, [1.0], 200).log_loss[:, 0]
    assert last_increase(small) == 0


# Three restart step sizes: the tests below judge the threshold claim only on altered
# restarts, and each restart is a run of its own.
TINY_XOR = cai.Setup(
    8,
    600,
    288.0,
    (9.0, 18.0, 36.0, 72.0),
    4000,
    (2.0**6, 2.0**11, 2.0**16),
    (100, 200, 400, 800, 1600),
    params={"n": 40, "noise": 0.1},
)


def test_a_reproduction_rejudges_its_saved_measurements(tmp_path, monkeypatch):
    """Runs a small ci reproduction, then alters its saved runs the way a broken trainer
    would: the claims concerned turn to FAIL when the same --out is judged again."""
    monkeypatch.setitem(cai.SETUPS["xor"], "ci", TINY_XOR)
    monkeypatch.setitem(cai.FIVE_POINT_STEPS, "ci", 400)
    out = tmp_path / "repro"
    empty = tmp_path / "no-data"
    empty.mkdir()
    reproduce("cai", "ci", out, data_dir=empty)
    before = {
        c["key"]: c["verdict"] for c in json.loads((out / "claims.json").read_text())["claims"]
    }
    for key in ("xor-oscillation", "xor-phase1-ends", "xor-margin", "xor-rate", "xor-faster"):
        assert before[key] == PASS, key

    path = out / "cai" / "measurements" / "xor.json"
    saved = json.loads(path.read_text())
    values = saved["values"]
    loss = np.array(values["main_log_loss"])
    half = len(loss) // 2
    loss[half:, :] = loss[half, :]  # the risk stops falling in the late half
    values["main_log_loss"] = loss.tolist()
    large = np.array(values["budget_log_loss"])
    values["budget_log_loss"] = (
        large[0] - 0.5 * np.log(np.array(values["budget_steps"]) / 100)
    ).tolist()
    values["restart_stable"] = np.ones_like(np.array(values["restart_stable"])).tolist()
    q_min = np.array(values["main_q_min"])
    q_min[half:, :] *= np.linspace(1.0, 0.8, len(q_min) - half)[:, None]  # the margin falls
    values["main_q_min"] = q_min.tolist()
    path.write_text(json.dumps(saved))

    reproduce("cai", "ci", out, data_dir=empty)
    after = {
        c["key"]: c["verdict"] for c in json.loads((out / "claims.json").read_text())["claims"]
    }
    for key in ("xor-rate", "xor-margin", "xor-faster", "xor-threshold"):
        assert after[key] == FAIL, key
    figures = {p.name for p in (out / "cai" / "figures").iterdir()}
    assert figures == {"cai-phases.png", "cai-rates.png"}


def test_the_figures_draw_a_data_set_without_restarts(tmp_path, monkeypatch):
    # the CIFAR-10 rows of the rates figure have no restarts; the page must still be drawn
    from marginlab.experiments.study import Study

    monkeypatch.setitem(cai.SETUPS["xor"], "ci", TINY_XOR)
    study = Study("cai", "ci", tmp_path, specs=list(cai.CLAIMS))
    x, y = cai.xor_data(TINY_XOR.params)
    measured = cai.measure_data_set(study, "xor", x, y, TINY_XOR)
    without = {**measured, "restart_eta": np.array([]), "restart_stable": np.array([])}
    cai._figure_rates(study, {"xor": measured, "cifar": without})
    assert (tmp_path / "figures" / "cai-rates.png").stat().st_size > 10_000
