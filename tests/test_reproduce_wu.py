"""Wu et al. reproduction: the data sets' margins, the GD loop against an independent step,
the theorems' bounds against their formulas, and re-judging altered measurements."""

import json
import math

import numpy as np
import pytest
from scipy.special import expit

from marginlab.experiments.claims import FAIL, NOT_RUN, PASS
from marginlab.experiments.papers import wu
from marginlab.experiments.reproduce import reproduce
from marginlab.measure.references.svm import linear_svm


def test_the_data_sets_have_the_stated_max_margins():
    x, y = wu.toy_set()
    svm = linear_svm(x, (y > 0).astype(int))
    assert svm.margin == pytest.approx(wu.TOY_MARGIN, rel=1e-6)
    assert np.allclose(svm.w / np.linalg.norm(svm.w), [0.0, 1.0], atol=1e-6)
    x, y = wu.lower_bound_set(0.05)
    assert np.linalg.norm(x, axis=1).max() == pytest.approx(1.0)
    # both points labelled +1: the margin of w = (1, 0) is gamma for both, and no unit w does
    # better (min over the two of <w, x_i> is at most gamma, with equality at w = (1, 0))
    directions = np.stack(
        [np.cos(np.linspace(0, 2 * np.pi, 3601)), np.sin(np.linspace(0, 2 * np.pi, 3601))]
    )
    assert (x @ directions).min(0).max() == pytest.approx(0.05, abs=1e-6)
    with pytest.raises(ValueError, match="gamma"):
        wu.lower_bound_set(0.2)


def test_logistic_gd_follows_an_independent_step_for_each_step_size():
    x, y = wu.toy_set()
    runs = wu.logistic_gd(x, y, [0.5, 8.0], 40)
    z = y[:, None] * x
    for j, eta in enumerate((0.5, 8.0)):
        w = np.zeros(2)
        for t in range(41):
            q = z @ w
            assert runs.log_loss[t, j] == pytest.approx(
                math.log(np.mean(np.log1p(np.exp(-q)))), rel=1e-12, abs=1e-14
            )
            assert runs.log_exp_loss[t, j] == pytest.approx(
                math.log(np.mean(np.exp(-q))), rel=1e-12, abs=1e-14
            )
            w = w + eta * (expit(-q) @ z) / len(z)
        ups = np.nonzero(np.diff(runs.log_loss[:, j]) > 0)[0] + 1
        assert runs.increases[j] == len(ups)
        assert runs.last_increase[j] == (ups[-1] if len(ups) else 0)


def test_log_loss_stays_exact_where_the_loss_underflows():
    # one point and a huge step: after one step the margin is 5000 and L = e^-5000, far
    # below float64's range; log L is still exact
    runs = wu.logistic_gd(np.array([[1.0]]), np.ones(1), [1e4], 2)
    assert runs.log_loss[0, 0] == pytest.approx(math.log(math.log(2.0)), rel=1e-15)
    assert runs.log_loss[1:, 0] == pytest.approx([-5000.0, -5000.0], rel=1e-15)
    assert runs.log_exp_loss[1, 0] == pytest.approx(-5000.0, rel=1e-15)


def test_recording_and_counting():
    x, y = wu.toy_set()
    every = wu.logistic_gd(x, y, [32.0], 300)
    some = wu.logistic_gd(x, y, [32.0], 300, record=[0, 7, 300])
    assert some.t.tolist() == [0, 7, 300]
    assert some.log_loss[:, 0] == pytest.approx(every.log_loss[[0, 7, 300], 0], rel=1e-15)
    assert some.increases.tolist() == every.increases.tolist()  # counted at every step
    assert wu.early_and_log_spaced(1000, early=2, per_decade=2).tolist() == [
        0,
        1,
        2,
        3,
        10,
        32,
        100,
        316,
        1000,
    ]


def test_the_bounds_are_the_theorems_formulas():
    gamma, eta = 0.1, 5.0
    u = np.array([1.0, 10.0, 1000.0])
    a = gamma**2 * eta * u
    f_s = 0.3
    assert np.exp(wu.stable_bound(math.log(f_s), gamma, eta, u)) == pytest.approx(
        (2 * f_s + np.log(a) ** 2) / a
    )
    assert np.exp(wu.eos_bound(gamma, eta, u)) == pytest.approx(
        (1 + np.log(a) ** 2 + eta**2 / 4) / a
    )
    assert wu.transition_time(0.5, 2.0, 3) == pytest.approx(
        240 * max(2.0, 3, math.e, 2.5 * math.log(2.5))
    )
    assert wu.transition_time(0.5, 0.01, 1) == pytest.approx(240 * 101 * math.log(101))
    assert wu.budget_bound(0.5, 100.0) == pytest.approx(480 * math.log(625.0) ** 2 / 625.0)
    assert wu.budget_step(0.2, 6000) == pytest.approx(2.0)
    assert wu.budget_min_steps(0.5, 10) == pytest.approx(4800.0)


def test_the_stable_phase_holds_at_every_step_of_large_step_runs():
    # the theorem itself, on runs of the unit-radius toy set: no rise after L <= 1/eta
    x, radius = wu.unit_radius(wu.toy_set()[0])
    runs = wu.logistic_gd(x, wu.toy_set()[1], [2.0, 50.0, 500.0], 2000)
    assert runs.increases[1] > 0 and runs.increases[2] > 0  # these oscillate first
    result = wu.stable_phase(runs.eta, wu.TOY_MARGIN / radius, runs.log_loss, runs.log_exp_loss)
    assert result.passed, result.ours


def test_a_reproduction_rejudges_its_saved_measurements(tmp_path, monkeypatch):
    """A small reproduction, then its saved runs altered the way a broken trainer would: the
    claims concerned turn to FAIL when the same --out is judged again."""
    tiny = wu.Setup(2000, 500, 600, (50_000, 100_000, 200_000, 500_000), 20_000)
    monkeypatch.setitem(wu.SETUPS, "ci", tiny)
    monkeypatch.setattr(wu, "_budget_runs", _fake_budget)
    out, empty = tmp_path / "repro", tmp_path / "no-data"
    empty.mkdir()
    reproduce("wu", "ci", out, data_dir=empty)
    before = _verdicts(out)
    assert before["mnist-phases"] == NOT_RUN  # no MNIST in that folder
    for key in (
        "toy-phases",
        "stable-phase",
        "eos-average",
        "transition-before-tau",
        "budget",
        "lower-bound",
    ):
        assert before[key] == PASS, key

    measurements = out / "wu" / "measurements"
    _alter(measurements / "toy.json", lambda v: v["increases"].__setitem__(0, 2))
    _alter(measurements / "theorems.json", _rise_late)
    _alter(
        measurements / "budget.json", lambda v: v.__setitem__("log_loss", [v["log_loss"][0]] * 4)
    )
    _alter(measurements / "lower-bound.json", _accelerate_best)
    reproduce("wu", "ci", out, data_dir=empty)
    after = _verdicts(out)
    for key in ("toy-phases", "stable-phase", "budget", "lower-bound"):
        assert after[key] == FAIL, key
    figures = {p.name for p in (out / "wu" / "figures").iterdir()}
    assert figures == {"wu-fig1.png", "wu-theorems.png"}


def _fake_budget(study, budgets):
    """The budget runs' asymptotic values (the real 5e5 steps take seconds)."""
    x, radius = wu.unit_radius(wu.toy_set()[0])
    gamma = wu.TOY_MARGIN / radius
    etas = [wu.budget_step(gamma, T) for T in budgets]
    final = [-math.log(gamma**2 * e * T) for e, T in zip(etas, budgets, strict=True)]
    values = {"steps": list(budgets), "eta": etas, "log_loss": final, "gamma": gamma, "n": 4}
    return study.measured("budget", {"budgets": list(budgets)}, lambda: values)


def _verdicts(out):
    return {c["key"]: c["verdict"] for c in json.loads((out / "claims.json").read_text())["claims"]}


def _alter(path, change):
    saved = json.loads(path.read_text())
    change(saved["values"])
    path.write_text(json.dumps(saved))


def _rise_late(values):
    loss = np.array(values["log_loss"])
    loss[-1, 3] = loss[-2, 3] + 0.01  # the eta = 64 run rises at its last step
    values["log_loss"] = loss.tolist()


def _accelerate_best(values):
    loss = np.array(values["log_loss"])
    t = np.maximum(np.array(values["t"]), 1.0)
    monotone = np.array(values["increases"]) == 0
    best = int(np.nonzero(monotone)[0][np.argmin(loss[-1, monotone])])
    loss[:, best] = math.log(0.5) - 2 * np.log(t)
    values["log_loss"] = loss.tolist()
