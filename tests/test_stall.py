"""A rolling-back schedule that no longer gets anywhere stops, and says why."""

from __future__ import annotations

import math

import pytest

from marginlab.training.engine import train
from marginlab.training.schedules import TrainingStopped
from marginlab.training.stall import StallWatch

FITTED = math.log(1e-3)


def _feed(watch: StallWatch, losses, accepted_every: int = 3) -> int:
    """Feed attempts (an accepted epoch every ``accepted_every``); return how many ran."""
    for attempt, loss in enumerate(losses):
        watch.see(epoch=attempt // accepted_every, log_loss=math.log(loss))
    return attempt + 1


def test_a_loss_stuck_above_the_fitted_level_stops_after_one_window():
    watch = StallWatch(log_fitted=FITTED, window=50)
    with pytest.raises(TrainingStopped, match="did not fall at all") as stop:
        _feed(watch, [0.69] * 200)
    assert "not separable" in str(stop.value)


def test_a_slow_but_steady_descent_goes_on():
    # 2% of the way to the fitted level per window (at least 1% is asked), then fitted
    watch = StallWatch(log_fitted=FITTED, window=50)
    start, end = math.log(0.69), FITTED - 1.0
    losses = [math.exp(start + (end - start) * t / 2500) for t in range(3000)]
    assert _feed(watch, losses) == 3000


def test_a_fitted_run_that_slows_down_is_left_to_min_alpha():
    watch = StallWatch(log_fitted=FITTED, window=50)
    assert _feed(watch, [1e-5] * 500) == 500


def test_too_slow_a_descent_stops_with_the_pace():
    watch = StallWatch(log_fitted=FITTED, window=50)
    losses = [0.69 * math.exp(-1e-6 * t) for t in range(200)]
    with pytest.raises(TrainingStopped, match="at that pace fitting it would take"):
        _feed(watch, losses)


def test_rollbacks_in_a_row_stop_even_a_fitted_run():
    watch = StallWatch(log_fitted=FITTED, rollbacks_in_a_row=20)
    with pytest.raises(TrainingStopped, match="20 attempts in a row were rolled back"):
        _feed(watch, [1e-5] * 30, accepted_every=10**9)


def test_a_non_separable_problem_under_loss_based_stops_with_the_cause(tmp_path):
    # XOR is not linearly separable: the loss settles at log 2 and the schedule can only
    # alternate between growing alpha and rolling back
    config = {
        "loss": "logistic",
        "data": {"name": "xor", "params": {"n": 40, "noise": 0.3}},
        "model": {"kind": "linear"},
        "train": {"schedule": "loss_based"},
        "threads": 1,
    }
    run = train(config, tmp_path / "xor", progress=False)
    from marginlab import load_run

    status = load_run(run).status
    assert status["state"] == "stopped"
    assert "not separable by this model" in status["message"]
    assert status["epoch"] < 10000  # long before train.max_epochs


def test_a_separable_problem_under_loss_based_is_not_stopped(tmp_path):
    config = {
        "loss": "logistic",
        "data": {"name": "gaussians", "params": {"n": 40, "d": 3, "margin": 0.05}},
        "model": {"kind": "linear"},
        "train": {"schedule": "loss_based", "target_log10_loss": -30},
        "threads": 1,
    }
    from marginlab import load_run

    status = load_run(train(config, tmp_path / "g", progress=False)).status
    assert status["state"] == "finished" and status["target_reached"] is True
