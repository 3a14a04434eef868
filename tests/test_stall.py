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


def _feed_slowly(watch: StallWatch, losses, seconds: float = 1.0) -> int:
    """As :func:`_feed`, with ``seconds`` per attempt on the watch's clock."""
    now = [0.0]
    watch.clock = lambda: now[0]
    for attempt, loss in enumerate(losses):
        now[0] += seconds
        watch.see(epoch=attempt // 3, log_loss=math.log(loss))
    return attempt + 1


def test_slow_attempts_end_a_window_early_so_a_stuck_run_stops_within_a_minute():
    # minibatch epochs of a second: the 1000-attempt window alone would take 17 minutes
    watch = StallWatch(log_fitted=FITTED, window_seconds=15, min_window=20)
    with pytest.raises(TrainingStopped, match=r"over the last 20 attempts \(19 s\)"):
        _feed_slowly(watch, [0.69] * 1000)
    watch = StallWatch(log_fitted=FITTED, window_seconds=15, min_window=10)
    with pytest.raises(TrainingStopped, match=r"over the last 16 attempts \(15 s\)"):
        _feed_slowly(watch, [0.69] * 1000)


def test_a_shorter_window_asks_the_same_pace():
    # Attempts of a second, windows of 20: a pace that fits in 50000 attempts goes on (the
    # 1000-attempt window asks for at most 100000), one that needs 200000 stops.
    def descent(attempts_to_fit: int, count: int) -> list[float]:
        start = math.log(0.69)
        return [math.exp(start + (FITTED - start) * t / attempts_to_fit) for t in range(count)]

    def watch() -> StallWatch:
        return StallWatch(log_fitted=FITTED, window_seconds=15, min_window=20)

    assert _feed_slowly(watch(), descent(50_000, 400)) == 400
    with pytest.raises(TrainingStopped, match="at that pace fitting it would take"):
        _feed_slowly(watch(), descent(200_000, 400))


def test_a_non_separable_minibatch_problem_stops_with_the_cause(tmp_path, monkeypatch):
    # Minibatch attempts are whole epochs; here windows end after 0.2 s (15 s in a run) so
    # that the test is quick, and the stop comes from the window's time, not its length.
    from functools import partial

    import marginlab.training.engine as engine
    from marginlab import load_run

    monkeypatch.setattr(engine, "StallWatch", partial(StallWatch, window_seconds=0.2))
    config = {
        "loss": "logistic",
        "data": {"name": "xor", "params": {"n": 40, "noise": 0.3}},
        "model": {"kind": "linear"},
        "train": {"schedule": "loss_based", "batch_size": 8},
        "threads": 1,
    }
    status = load_run(train(config, tmp_path / "xor", progress=False)).status
    assert status["state"] == "stopped"
    assert "not separable by this model" in status["message"]
    attempts = int(status["message"].split("over the last ")[1].split()[0])
    assert attempts < 1000  # the window ended on its time
