"""Speculative retries: the worker's attempts are the ones this process would compute."""

import time

import pytest
import torch

from marginlab.config import validate
from marginlab.measure.margins import trainable_parameters
from marginlab.training.assembly import assemble
from marginlab.training.attempt import evaluate_split, run_attempt
from marginlab.training.speculation import Speculator, _Job


def _parts(alpha=0.1):
    return assemble(
        validate(
            {
                "seed": 1,
                "threads": 1,
                "data": {"name": "digits", "n_train": 200},
                "model": {"kind": "mlp", "hidden": [16]},
                "train": {"batch_size": 40, "speculate": True, "alpha": alpha},
            }
        )
    )


def _start(alpha=0.1):
    parts = _parts(alpha)
    params = trainable_parameters(parts.model)
    evaluation = evaluate_split(parts, parts.data.x_train, parts.data.y_train)
    return (
        parts,
        params,
        [p.detach().clone() for p in params],
        parts.schedule.init(evaluation.log_loss_mean),
    )


def _local(index, schedule, alpha=0.1):
    parts, params, _, _ = _start(alpha)
    return run_attempt(parts, params, schedule, index), [p.detach().clone() for p in params]


def test_a_retry_run_ahead_equals_the_local_retry():
    parts, params, accepted, state = _start()
    speculator = Speculator(parts)
    try:
        assert speculator.ready(timeout=60)
        speculator.attempt(params, accepted, 0, 0, state)  # runs 0 here, 1 in the worker
        retry = parts.schedule.retry(state)
        ahead = speculator.attempt(params, accepted, 0, 1, retry)
    finally:
        speculator.close()
    local, weights = _local(1, retry)
    assert ahead.steps == local.steps == 5
    assert ahead.log_lr_sum == local.log_lr_sum
    assert torch.equal(ahead.evaluation.log_losses, local.evaluation.log_losses)
    assert all(torch.equal(p, w) for p, w in zip(params, weights, strict=True))


def test_a_killed_worker_leaves_the_attempts_to_this_process():
    parts, params, accepted, state = _start()
    speculator = Speculator(parts)
    try:
        assert speculator.ready(timeout=60)
        speculator.attempt(params, accepted, 0, 0, state)
        speculator._process.kill()
        speculator._process.join()
        retry = parts.schedule.retry(state)
        with torch.no_grad():
            torch._foreach_copy_(params, accepted)
        after = speculator.attempt(params, accepted, 0, 1, retry)
    finally:
        speculator.close()
    local, weights = _local(1, retry)
    assert after.log_lr_sum == local.log_lr_sum
    assert all(torch.equal(p, w) for p, w in zip(params, weights, strict=True))


class _SlowAhead(Speculator):
    """Links run here while waiting take 0.1 s a step, so the worker's result comes first."""

    def _poll(self, waiting_for):
        if waiting_for is not None:
            time.sleep(0.1)
        return super()._poll(waiting_for)


@pytest.mark.parametrize(("alpha", "accepted"), [(0.1, True), (1e4, False)])
def test_links_run_here_while_waiting_are_kept_unless_the_awaited_one_is_accepted(alpha, accepted):
    parts, params, accepted_weights, state = _start(alpha)
    first = parts.schedule.retry(state)  # attempt 1, which the worker runs
    speculator = _SlowAhead(parts)
    try:
        assert speculator.ready(timeout=60)
        # As after attempt 0 ran here: attempt 1 goes to the worker.
        speculator._params, speculator._accepted = params, accepted_weights
        speculator._furthest = _Job(0, 0, state)
        speculator._keep_worker_busy()
        assert speculator._in_worker == _Job(0, 1, first)
        awaited = speculator.attempt(params, accepted_weights, 0, 1, first)
        link = _Job(0, 2, parts.schedule.retry(first))
        ran_ahead = link in speculator._done
    finally:
        speculator.close()
    local, weights = _local(1, first, alpha)
    assert awaited.log_lr_sum == local.log_lr_sum
    assert all(torch.equal(p, w) for p, w in zip(params, weights, strict=True))
    log_loss = local.evaluation.log_loss_mean if local.evaluation else float("nan")
    assert parts.schedule.end_epoch(first, log_loss, local.completed)[0] == accepted
    # Attempt 2 ran here meanwhile: dropped once attempt 1 is known to be accepted, kept
    # for the engine when attempt 1 will be rolled back.
    assert ran_ahead != accepted
