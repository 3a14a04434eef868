"""Speculative retries: the worker's attempts are the ones this process would compute."""

import torch

from marginlab.assemble import assemble
from marginlab.config import validate
from marginlab.measure.margins import trainable_parameters
from marginlab.training.attempt import evaluate_split, run_attempt
from marginlab.training.speculation import Speculator


def _parts():
    return assemble(
        validate(
            {
                "seed": 1,
                "threads": 1,
                "data": {"name": "digits", "n_train": 200},
                "model": {"kind": "mlp", "hidden": [16]},
                "train": {"batch_size": 40, "speculate": True},
            }
        )
    )


def _start():
    parts = _parts()
    params = trainable_parameters(parts.model)
    evaluation = evaluate_split(parts, parts.data.x_train, parts.data.y_train)
    return (
        parts,
        params,
        [p.detach().clone() for p in params],
        parts.schedule.init(evaluation.log_loss_mean),
    )


def _local(index, schedule):
    parts, params, _, _ = _start()
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
