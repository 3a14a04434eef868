"""What a run will cost, timed before it starts on a slice of its own data.

An attempt is an epoch's steps (``N // batch_size`` gradients of a batch, or one of the full
set) and an evaluation of the full training set. Both are timed on a slice of the training
set with the run's own model, loss and threads, and scaled to the whole: the estimate of an
epoch is known before the first one ends (94 s for the MNIST CNN on 2 cores), and nothing of
the run changes (no step is taken, no random number drawn).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from marginlab.measure.gradient import log_loss_and_grad
from marginlab.measure.margins import trainable_parameters
from marginlab.training.assembly import Assembly, session_threads
from marginlab.training.attempt import evaluate_split

# Attempts per accepted epoch of a schedule that rolls back: the loss-based schedule settles
# at the edge of stability, where about two of three attempts are rolled back (digits-cnn:
# 5054 attempts for 1614 epochs; digits-mlp: 3748 for 1239).
ATTEMPTS_PER_EPOCH = 3

# Attempt times per accepted epoch when a second process runs the retries ahead
# (train.speculate, :mod:`marginlab.training.speculation`): two instead of three. digits-cnn
# measured 1.7 (1918 epochs in 316 s of wall time, attempts of 0.093 to 0.104 s).
SPECULATIVE_ATTEMPT_TIMES = 2

# Samples timed for each part: enough to leave the fixed cost of a call behind, little
# enough to take a fraction of a second on the largest preset.
PROBE_SAMPLES = 256


def _timed(work, repeats: int = 2) -> float:
    """The fastest of ``repeats`` calls after a warm-up (the first call allocates)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def seconds_per_attempt(parts: Assembly) -> float:
    """Estimate the seconds of one attempt of ``parts`` (its steps and its evaluation).

    Examples
    --------
    >>> from marginlab.config import validate
    >>> from marginlab.training.assembly import assemble
    >>> parts = assemble(validate({"data": {"name": "digits", "n_train": 200},
    ...     "model": {"kind": "mlp", "hidden": [16]}, "train": {"batch_size": 20}}))
    >>> before = [p.clone() for p in parts.model.parameters()]
    >>> seconds_per_attempt(parts) > 0
    True
    >>> all(torch.equal(a, b) for a, b in zip(before, parts.model.parameters()))
    True
    """
    x, y = parts.data.x_train, parts.data.y_train
    n, train = len(x), parts.config.train
    batch = train.batch_size or min(n, PROBE_SAMPLES)
    params = trainable_parameters(parts.model)
    xb, yb = x[:batch], y[:batch]

    def step() -> None:
        log_loss_and_grad(parts.model, params, xb, yb, parts.loss, train.chunk_size)

    probe = min(n, PROBE_SAMPLES)

    def evaluation() -> None:
        with torch.no_grad():
            evaluate_split(parts, x[:probe], y[:probe])

    per_step = _timed(step)
    steps = n // train.batch_size if train.batch_size else n / batch
    return steps * per_step + n / probe * _timed(evaluation)


@dataclass(frozen=True)
class EpochCost:
    """The estimated cost of an accepted epoch: an attempt, times the attempts it takes
    (fewer attempt times when a second process computes retries ahead: ``speculative``)."""

    seconds_per_attempt: float
    attempts_per_epoch: int
    speculative: bool = False

    @property
    def seconds(self) -> float:
        times = self.attempts_per_epoch
        if self.speculative:
            times = min(times, SPECULATIVE_ATTEMPT_TIMES)
        return self.seconds_per_attempt * times

    def describe(self) -> str:
        """Where the number comes from, in words.

        Examples
        --------
        >>> EpochCost(0.0512, 3).describe()
        'an attempt takes 0.0512 s (timed on a slice of the data), about 3 per epoch ...'
        >>> EpochCost(0.1, 3, speculative=True).seconds
        0.2
        """
        text = f"an attempt takes {self.seconds_per_attempt:.3g} s (timed on a slice of the data)"
        if self.attempts_per_epoch > 1:
            text += (
                f", about {self.attempts_per_epoch} per epoch once the loss-based schedule "
                "settles (two of three rolled back)"
            )
            if self.speculative:
                text += (
                    ", computed ahead in a second process (train.speculate): about "
                    f"{SPECULATIVE_ATTEMPT_TIMES} attempt times per epoch"
                )
        return text


def epoch_cost(parts: Assembly) -> EpochCost:
    """Estimate the cost of an accepted epoch of ``parts`` (see :func:`seconds_per_attempt`),
    timed with the threads the run will train with; a run whose retries a second process
    computes ahead (``train.speculate`` on a CPU) is estimated at that pace."""
    rolls_back = getattr(parts.schedule, "rolls_back", False)
    speculative = rolls_back and parts.config.train.speculate and parts.device.type == "cpu"
    threads = torch.get_num_threads()
    torch.set_num_threads(session_threads(parts))
    try:
        seconds = seconds_per_attempt(parts)
    finally:
        torch.set_num_threads(threads)
    return EpochCost(seconds, ATTEMPTS_PER_EPOCH if rolls_back else 1, speculative)
