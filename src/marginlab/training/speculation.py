"""Speculative retries: a second process runs the retry of each attempt while it runs.

Under the loss-based schedule alpha climbs until an epoch fails, so once it reaches the edge
of stability most attempts are rejected: with the reference factors (up 2^(1/5), down
2^(1/10)) two of every three. A retry starts from the same accepted weights, with the
alpha and shuffle that a rejection implies, so it can start before the rejection is known.
While this process runs attempt k, a worker process runs attempt k+1 as if k were rejected;
when k is rejected the retry is ready, and when k is accepted the worker's attempt is
cancelled. On two cores this makes an accept-reject-reject cycle cost two attempt times
instead of three.

Each attempt is a function of its starting weights, schedule state and index (see
:mod:`marginlab.training.attempt`), computed by the same code with the same number of
threads in both processes, so the trajectory is the same as without the worker, bit for bit.
"""

from __future__ import annotations

import copy
import multiprocessing
import signal
from dataclasses import dataclass, replace

import numpy as np
import torch

from marginlab.assemble import Assembly
from marginlab.measure.margins import Evaluation, trainable_parameters
from marginlab.training.attempt import Attempt, Cancelled, run_attempt
from marginlab.training.schedules import ScheduleState, TrainingStopped


@dataclass(frozen=True)
class _Job:
    epoch: int
    index: int
    schedule: ScheduleState


def _arrays(tensors: list[torch.Tensor]) -> list[np.ndarray]:
    # Arrays pickle by value; tensors would travel as shared memory that both sides write.
    return [t.detach().cpu().numpy().copy() for t in tensors]


def _serve(parts: Assembly, threads: int, connection, cancel) -> None:
    """The worker: run each attempt it is sent, from the weights that come with it."""
    # A Ctrl-C reaches the whole process group; only the main process decides what to save.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(threads)
    params = trainable_parameters(parts.model)
    try:
        _answer(parts, params, connection, cancel)
    except (EOFError, BrokenPipeError):
        pass  # the main process is gone


def _answer(parts: Assembly, params: list[torch.Tensor], connection, cancel) -> None:
    while True:
        number, weights, schedule, index = connection.recv()
        with torch.no_grad():
            for param, array in zip(params, weights, strict=True):
                param.copy_(torch.from_numpy(array))
        try:
            attempt = run_attempt(
                parts, params, schedule, index, cancelled=lambda n=number: cancel.value >= n
            )
        except Cancelled:
            connection.send((number, None))
            continue
        evaluation = attempt.evaluation
        tensors = None if evaluation is None else [evaluation.log_losses, evaluation.margins]
        result = (attempt.completed, attempt.log_lr_sum, attempt.log_lr, attempt.steps)
        connection.send((number, (*result, tensors and _arrays(tensors), _arrays(params))))


def _attempt_from(message: tuple) -> tuple[Attempt, list[np.ndarray]]:
    completed, log_lr_sum, log_lr, steps, evaluation, weights = message
    if evaluation is not None:
        log_losses, margins = (torch.from_numpy(array) for array in evaluation)
        evaluation = Evaluation(log_losses, margins)
    return Attempt(completed, log_lr_sum, log_lr, steps, evaluation), weights


class Speculator:
    """Runs attempts here and their retries ahead of time in a worker process.

    Parameters
    ----------
    parts : Assembly
        The run (loss-based schedule, minibatches, on the CPU).

    Examples
    --------
    >>> from marginlab.assemble import assemble
    >>> from marginlab.config import validate
    >>> parts = assemble(validate({"data": {"name": "digits", "n_train": 100},
    ...     "model": {"kind": "mlp", "hidden": [16]}, "train": {"batch_size": 20}}))
    >>> speculator = Speculator(parts)
    >>> speculator.close()
    """

    def __init__(self, parts: Assembly) -> None:
        self.parts = parts
        context = multiprocessing.get_context("spawn")
        self._connection, worker_end = context.Pipe()
        self._cancel = context.RawValue("q", -1)
        # The worker trains its own copy of the model; the data it only reads.
        worker_parts = replace(parts, model=copy.deepcopy(parts.model))
        self._process = context.Process(
            target=_serve,
            args=(worker_parts, torch.get_num_threads(), worker_end, self._cancel),
            daemon=True,
        )
        self._process.start()
        worker_end.close()
        self._sent = 0
        self._pending: _Job | None = None

    def attempt(
        self,
        params: list[torch.Tensor],
        accepted: list[torch.Tensor],
        epoch: int,
        index: int,
        schedule: ScheduleState,
    ) -> Attempt:
        """Run attempt ``index`` from the accepted weights, as the engine would here.

        ``params`` ends holding the attempt's weights, as after :func:`run_attempt`.
        """
        try:
            ahead = self._collect(_Job(epoch, index, schedule))
            if ahead is not None:
                attempt, weights = ahead
                with torch.no_grad():
                    for param, array in zip(params, weights, strict=True):
                        param.copy_(torch.from_numpy(array))
                return attempt
            self._dispatch(accepted, epoch, index, schedule)
        except (EOFError, OSError):
            # The worker is gone (killed from outside): carry on without it.
            self._pending = None
            if self._process.is_alive():
                self._process.kill()
        return run_attempt(self.parts, params, schedule, index)

    def _collect(self, job: _Job) -> tuple[Attempt, list[np.ndarray]] | None:
        """The worker's result when it ran ``job``; otherwise cancel what it runs."""
        if self._pending is None:
            return None
        ready, self._pending = self._pending == job, None
        if not ready:
            self._cancel.value = self._sent
        _, message = self._connection.recv()
        return _attempt_from(message) if ready and message is not None else None

    def _dispatch(
        self, accepted: list[torch.Tensor], epoch: int, index: int, schedule: ScheduleState
    ) -> None:
        """Start the retry of attempt ``index`` in the worker, if a retry is possible."""
        if not self._process.is_alive():
            return
        try:
            retry = self.parts.schedule.retry(schedule)
        except TrainingStopped:
            return
        self._sent += 1
        self._connection.send((self._sent, _arrays(accepted), retry, index + 1))
        self._pending = _Job(epoch, index + 1, retry)

    def close(self) -> None:
        """Stop the worker (it holds nothing that needs saving)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._connection.close()
