"""Cai et al. trains with ``marginlab.fit``: the same runs as the batched loop it replaced
(``benchmarks/hand_loops.py``), step for step, on the reproduction's own problems."""

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from marginlab.experiments.papers import cai

RELATIVE = 1e-9


@pytest.fixture(scope="module")
def hand_loops():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
        return importlib.import_module("hand_loops")


def _xor():
    x, y = cai.xor_data({"n": 40, "noise": 0.1})
    return x, y, cai.curvature_constant(8, 1.0)


def test_the_step_size_grid_follows_the_old_loop(hand_loops):
    # the ci grid, the large step (eta C = 288) oscillating for its first 18 steps
    x, y, c = _xor()
    grid = [9.0, 18.0, 36.0, 72.0, 288.0]
    start = cai.initial_weights(8, x.shape[1], len(grid), 0.1, 0)
    etas = [g / c for g in grid]
    old = hand_loops.cai_loop(x, y, start, etas, 300)
    new = cai.two_layer_gd(x, y, start, etas, 300)
    assert new.eta.tolist() == etas
    for key in ("log_loss", "q_min", "norm"):
        assert getattr(new, key) == pytest.approx(getattr(old, key), rel=RELATIVE), key
    assert cai.last_increase(new.log_loss[:, -1]) == cai.last_increase(old.log_loss[:, -1]) > 0


def test_snapshots_and_restarts_follow_the_old_loop(hand_loops):
    x, y, c = _xor()
    start = cai.initial_weights(8, x.shape[1], 1, 0.1, 0)
    levels = [math.log(10) * (-0.2 - k / 10) for k in range(12)]
    old = hand_loops.cai_loop(x, y, start, [36.0 / c], 400, levels=levels)
    shots = cai.Snapshots(levels)
    new = cai.two_layer_gd(x, y, start, [36.0 / c], 400, snapshots=shots)
    assert new.log_loss == pytest.approx(old.log_loss, rel=RELATIVE)
    assert len(old.snapshot_log_loss) >= 8  # several levels, some passed two at a time
    assert shots.log_loss == pytest.approx(old.snapshot_log_loss, rel=RELATIVE)
    for ours, theirs in zip(shots.weights, old.snapshot_weights, strict=True):
        assert ours.shape == theirs.shape
        assert torch.allclose(ours, theirs, rtol=RELATIVE, atol=0)
    # restarts from the checkpoints with a large step: stable ones and unstable ones
    stack = torch.stack(shots.weights)
    eta = 2.0**12 / c
    old_restart = hand_loops.cai_loop(x, y, stack, [eta] * len(stack), 100)
    new_restart = cai.two_layer_gd(x, y, stack, [eta] * len(stack), 100)
    stable = [cai.last_increase(new_restart.log_loss[:, j]) == 0 for j in range(len(stack))]
    assert 0 < sum(stable) < len(stable)
    assert stable == [cai.last_increase(old_restart.log_loss[:, j]) == 0 for j in range(len(stack))]


def test_a_level_reached_at_the_last_step_is_kept(hand_loops):
    x, y = cai.five_points()
    start = cai.initial_weights(2, 3, 1, 0.1, 0)
    levels = [math.log(0.6), math.log(0.5), math.log(0.45)]
    full = cai.two_layer_gd(x, y, start, [3.0], 400).log_loss[:, 0]
    last = int(np.argmax(full <= levels[-1]))
    assert 0 < last < 400
    shots = cai.Snapshots(levels)
    cai.two_layer_gd(x, y, start, [3.0], last, snapshots=shots)
    old = hand_loops.cai_loop(x, y, start, [3.0], last, levels=levels)
    assert shots.log_loss == pytest.approx(old.snapshot_log_loss, rel=RELATIVE)
    assert shots.log_loss[-1] == full[last] and shots.pending is None


def test_the_five_point_neurons_follow_the_old_loop(hand_loops):
    x, y = cai.five_points()
    zero = torch.zeros(1, 2, 3, dtype=torch.float64)
    old = hand_loops.cai_loop(x, y, zero, [cai.FIVE_POINT_ETA], 300, neuron_margins=True)
    neurons: list = []
    new = cai.two_layer_gd(x, y, zero, [cai.FIVE_POINT_ETA], 300, neurons=neurons)
    assert len(neurons) == 301
    assert np.isnan(neurons[0]).all()  # W_0 = 0: every neuron is zero
    assert np.array(neurons)[1:] == pytest.approx(old.neuron_margins[1:], rel=RELATIVE)
    assert new.q_min == pytest.approx(old.q_min, rel=RELATIVE, abs=1e-300)


def test_a_run_that_overflows_carries_nan_from_there_on(hand_loops):
    # inputs of size 1e10 and a step of 1e290 throw the weights past float64 in one step;
    # the other run is unaffected
    x, y = cai.five_points()
    x = 1e10 * x
    start = 0.1 * torch.ones(2, 2, 3, dtype=torch.float64)
    etas = [1e-21, 1e290]
    old = hand_loops.cai_loop(x, y, start, etas, 5)
    new = cai.two_layer_gd(x, y, start, etas, 5)
    assert np.isnan(old.log_loss[1:, 1]).all() and np.isnan(new.log_loss[1:, 1]).all()
    assert new.log_loss[0] == pytest.approx(old.log_loss[0], rel=RELATIVE)
    assert np.isfinite(new.log_loss[:, 0]).all() and np.isfinite(old.log_loss[:, 0]).all()


def test_one_run_per_step_size_and_one_run_for_the_extras():
    x, y = cai.five_points()
    start = torch.zeros(2, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="etas: 1 step sizes for 2"):
        cai.two_layer_gd(x, y, start, [1.0], 3)
    with pytest.raises(ValueError, match="snapshots, neurons: need one run"):
        cai.two_layer_gd(x, y, start, [1.0, 2.0], 3, neurons=[])


def test_a_snapshot_level_below_float64_is_a_target_fit_can_take():
    # exp(-2000) is 0 in float64: the level goes to fit as exact text, not as a float
    x, y = cai.five_points()
    net = cai.SignedTwoLayer(0.1 * torch.ones(2, 3, dtype=torch.float64))
    ((trace, reached),) = cai._fit_steps([net], x, y, [1.0], 5, target_log_loss=-2000.0)
    assert not reached and len(trace) == 6
