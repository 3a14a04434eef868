"""Helpers of the Vardi and Soudry reproductions: end-point classes, frequencies, rate fits."""

import numpy as np
import pytest
import torch

from marginlab.experiments.papers.soudry import late_window, log_spaced_steps, logistic_gd
from marginlab.experiments.papers.vardi import (
    IMPROVABLE,
    NOT_KKT,
    NOT_SEPARATED,
    UNIMPROVABLE,
    batched_gd,
    classify,
    frequency,
)
from marginlab.measure.references.vardi import construction
from marginlab.measure.trajectory import fit_exponent, slope


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
    statuses = [IMPROVABLE, NOT_SEPARATED, NOT_KKT]
    assert frequency(statuses) == (1, 2)
    assert frequency(statuses, NOT_KKT) == (1, 2)
    assert frequency([NOT_SEPARATED]) == (0, 0)


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


def test_late_window_keeps_the_last_decades_and_steps_are_log_spaced():
    t = np.array([1, 10, 100, 1000, 10_000])
    assert late_window(t, 2.0).tolist() == [False, False, True, True, True]
    assert late_window(t, 4.0).all()
    steps = log_spaced_steps(10_000)
    assert steps[0] == 1 and steps[-1] == 10_000 and (np.diff(steps) > 0).all()


def test_logistic_gd_follows_the_soudry_rates_on_two_points():
    x, y = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0])
    w_star = np.array([0.5, -1.0])
    run = logistic_gd(x, y, w_star, 20_000)
    late = late_window(run.t, 1.0)
    assert fit_exponent(np.log(run.t[late]), np.log(run.loss[late])) == pytest.approx(
        -1.0, abs=0.05
    )
    growth = slope(np.log(run.t[late]), run.norm[late]) / np.linalg.norm(w_star)
    assert growth == pytest.approx(1.0, abs=0.05)
    assert run.error[-1] < run.error[len(run.error) // 2]


def test_vardi_judges_its_saved_measurements_as_they_read(tmp_path, monkeypatch):
    """Re-running on an output folder re-judges the saved files; altering them the way a
    broken probe or classifier would turns the claims concerned to FAIL."""
    import json

    import controls_vardi

    from marginlab.experiments.claims import FAIL, PASS
    from marginlab.experiments.papers import vardi
    from marginlab.experiments.study import Study

    def fake_end_points(name, theta0, schedule, n_random=100):
        # the stated initializations (1 run) and V4's ball (16 runs) end at theta*; of the
        # random runs on V4 one in eight ends at an improvable KKT point
        n, c = len(theta0), construction(name)
        if n == 1 or (name == "V4" and n == 16):
            statuses = [vardi.STATED_ENDS.get(name, IMPROVABLE)] * n
        else:
            k = n // 8 if name == "V4" else 0
            statuses = [IMPROVABLE] * k + [UNIMPROVABLE] * (n - k)
        return {"statuses": statuses, "margins": [c.margin] * n, "cosines": [1.0] * n}

    monkeypatch.setattr(vardi, "measure_construction", lambda name, **_: controls_vardi.exact(name))
    monkeypatch.setattr(vardi, "gd_end_points", fake_end_points)

    def verdicts():
        study = Study("vardi", "ci", tmp_path, specs=list(vardi.CLAIMS))
        vardi.reproduce(study)
        study.finish()
        return {claim.key: claim.verdict for claim in study.claims}

    first = verdicts()
    assert set(first.values()) == {PASS} and len(first) == len(vardi.CLAIMS)

    def measuring(*args, **kwargs):
        raise AssertionError("the saved measurements should have been read")

    monkeypatch.setattr(vardi, "measure_construction", measuring)
    monkeypatch.setattr(vardi, "gd_end_points", measuring)
    monkeypatch.setattr(vardi, "measure_per_layer", measuring)
    folder = tmp_path / "measurements"
    runs = json.loads((folder / "random-inits.json").read_text())
    runs["values"]["V4"]["statuses"] = [UNIMPROVABLE] * len(runs["values"]["V4"]["statuses"])
    (folder / "random-inits.json").write_text(json.dumps(runs))
    built = json.loads((folder / "constructions.json").read_text())
    built["values"]["V4"]["probe_gain"] = 0.0
    (folder / "constructions.json").write_text(json.dumps(built))
    layered = json.loads((folder / "per-layer.json").read_text())
    layered["values"]["V5"]["global_value"][0] = 2.0  # as if V5 were per-layer global
    (folder / "per-layer.json").write_text(json.dumps(layered))

    second = verdicts()
    failed = {key for key, verdict in second.items() if verdict == FAIL}
    assert failed == {
        "gd-random-init-not-local",
        "construction-V4",
        "per-layer-V5-local-not-global",
    }
