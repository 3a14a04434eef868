"""Speculative retries: both cores work through the retries of an epoch ahead of time.

Under the loss-based schedule alpha climbs until an epoch fails, so once it reaches the edge
of stability most attempts are rejected: with the reference factors (up 2^(1/5), down
2^(1/10)) two of every three. The retries of an epoch all start from the same accepted
weights, with the alpha and shuffle that the rejections before them imply, so they can run
before those rejections are known: attempts ``k, k+1, k+2, ...`` form a chain that ends at
the first accepted one. This process and a worker process take the links of the chain in
order, each starting the next one as soon as it is free; an attempt that fails early (a
batch loss far above the frame) frees its process early. When a link is accepted, the links
after it are cancelled and the next epoch's chain starts. On two cores an epoch of two
rejections and an acceptance costs about two attempt times instead of three, and less when
attempts abort.

Each attempt is a function of its starting weights, schedule state and index (see
:mod:`marginlab.training.attempt`), computed by the same code with the same number of
threads in both processes, so the trajectory is the same as without the worker, bit for bit.
Which attempts are accepted is still decided by the engine, in order; the chain only uses
the schedule's rule to stop its own speculative work early.
"""

from __future__ import annotations

import copy
import multiprocessing
import signal
from dataclasses import dataclass, replace

import numpy as np
import torch

from marginlab.measure.margins import Evaluation, margin_metrics, trainable_parameters
from marginlab.training.assembly import Assembly, session_threads
from marginlab.training.attempt import Attempt, Cancelled, run_attempt
from marginlab.training.schedules import ScheduleState, TrainingStopped

# Links run here while the worker runs an earlier one, at most; each holds a copy of the
# weights until the engine reaches it.
_MAX_AHEAD = 8


@dataclass(frozen=True)
class _Job:
    epoch: int
    index: int
    schedule: ScheduleState


@dataclass
class _Result:
    attempt: Attempt
    weights: list[np.ndarray]
    # The worker's links only: smoothed margin at the attempt's weights, for the margin
    # guard (None without it). The engine computes its own; this one lets the chain know
    # early that a link will be accepted.
    margin: float | None = None


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
        connection.send((0, None))  # started: until now the main process works alone
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
        margin = None
        if evaluation is not None and parts.config.train.reject_margin_decrease:
            margin = margin_metrics(evaluation, parts.model, parts.loss)["smoothed_margin"]
        tensors = None if evaluation is None else [evaluation.log_losses, evaluation.margins]
        # The evaluation travels as arrays; start_gradient is full batch only, never here.
        summary = (attempt.completed, attempt.log_lr_sum, attempt.log_lr, attempt.steps)
        message = (summary, tensors and _arrays(tensors), _arrays(params), margin)
        connection.send((number, message))


def _result_from(message: tuple) -> _Result:
    (completed, log_lr_sum, log_lr, steps), evaluation, weights, margin = message
    if evaluation is not None:
        log_losses, margins = (torch.from_numpy(array) for array in evaluation)
        evaluation = Evaluation(log_losses, margins)
    return _Result(Attempt(completed, log_lr_sum, log_lr, steps, evaluation), weights, margin)


class Speculator:
    """Runs the retries of each epoch ahead of time, here and in a worker process.

    Parameters
    ----------
    parts : Assembly
        The run (loss-based schedule, minibatches, on the CPU).

    Examples
    --------
    >>> from marginlab.training.assembly import assemble
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
            args=(worker_parts, session_threads(parts), worker_end, self._cancel),
            daemon=True,
        )
        self._process.start()
        worker_end.close()
        self._started = False
        self._sent = 0  # number of the last job sent to the worker
        self._in_worker: _Job | None = None  # the link the worker runs
        self._furthest: _Job | None = None  # the last link started, here or there
        self._done: dict[_Job, _Result] = {}  # finished links of the current chain
        self._params: list[torch.Tensor] = []
        self._accepted: list[torch.Tensor] = []

    def attempt(
        self,
        params: list[torch.Tensor],
        accepted: list[torch.Tensor],
        epoch: int,
        index: int,
        schedule: ScheduleState,
    ) -> Attempt:
        """Run attempt ``index`` from the accepted weights, as the engine would here.

        ``params`` holds the accepted weights on entry and the attempt's weights on return,
        as around :func:`run_attempt`; the engine asks for the attempts in order.
        """
        self._params, self._accepted = params, accepted
        job = _Job(epoch, index, schedule)
        try:
            self._forget_other_chains(job)
            if job in self._done:
                self._keep_worker_busy()
            elif self._in_worker == job:
                self._await(job)
            else:
                self._furthest = job
                self._keep_worker_busy()
                self._run_here(job, waiting_for=None)
        except (EOFError, OSError):
            # The worker is gone (killed from outside): carry on without it.
            self._in_worker = None
            if self._process.is_alive():
                self._process.kill()
            if job not in self._done:
                self._run_here(job, waiting_for=None)
        result = self._done.pop(job)
        with torch.no_grad():
            for param, array in zip(params, result.weights, strict=True):
                param.copy_(torch.from_numpy(array))
        return result.attempt

    def _forget_other_chains(self, job: _Job) -> None:
        """Drop the links that ``job`` made moot: earlier ones, or another epoch's."""

        def current(link: _Job) -> bool:
            return link.epoch == job.epoch and link.index >= job.index

        if self._in_worker is not None and not current(self._in_worker):
            self._cancel.value = self._sent
            self._connection.recv()  # its reply: a result or the cancellation
            self._in_worker = None
        self._done = {link: result for link, result in self._done.items() if current(link)}
        if self._furthest is not None and not current(self._furthest):
            self._furthest = None

    def _next_link(self) -> _Job | None:
        """The retry of the last link started, or None when the schedule would stop."""
        last = self._furthest
        if last is None:
            return None
        try:
            return _Job(last.epoch, last.index + 1, self.parts.schedule.retry(last.schedule))
        except TrainingStopped:
            return None

    def ready(self, timeout: float = 0.0) -> bool:
        """Whether the worker has started, waiting up to ``timeout`` seconds for it."""
        if not self._started and self._connection.poll(timeout):
            self._connection.recv()
            self._started = True
        return self._started

    def _keep_worker_busy(self) -> None:
        if self._in_worker is not None or not self._process.is_alive() or not self.ready():
            return
        link = self._next_link()
        if link is None:
            return
        self._sent += 1
        self._connection.send((self._sent, _arrays(self._accepted), link.schedule, link.index))
        self._in_worker = self._furthest = link

    def _receive(self) -> None:
        """Wait for the worker's current job and keep its result."""
        _, message = self._connection.recv()
        job, self._in_worker = self._in_worker, None
        if message is not None and job is not None:
            self._done[job] = _result_from(message)

    def _accepted_by_rule(self, job: _Job) -> bool:
        """Whether the engine will accept ``job``'s finished attempt (the schedule's rule)."""
        result = self._done[job]
        evaluation = result.attempt.evaluation
        log_loss = evaluation.log_loss_mean if evaluation is not None else float("nan")
        try:
            accepted, _ = self.parts.schedule.end_epoch(
                job.schedule, log_loss, result.attempt.completed, result.margin
            )
        except TrainingStopped:
            return False
        return accepted

    def _poll(self, waiting_for: _Job | None) -> bool:
        """Between two steps here: collect the worker's result and give it the next link.

        Returns True to cancel the attempt running here: it is a retry of ``waiting_for``,
        which the worker has finished and which will be accepted.
        """
        if self._in_worker is not None and self._connection.poll():
            received = self._in_worker
            self._receive()
            if received == waiting_for and received in self._done:
                if self._accepted_by_rule(received):
                    return True
        self._keep_worker_busy()
        return False

    def _run_here(self, job: _Job, waiting_for: _Job | None) -> None:
        """Run ``job`` in this process from the accepted weights and keep its result."""
        if self._furthest is None or job.index > self._furthest.index:
            self._furthest = job
        with torch.no_grad():
            torch._foreach_copy_(self._params, self._accepted)
        try:
            attempt = run_attempt(
                self.parts,
                self._params,
                job.schedule,
                job.index,
                cancelled=lambda: self._poll(waiting_for),
            )
        except Cancelled:
            return
        self._done[job] = _Result(attempt, _arrays(self._params))

    def _await(self, job: _Job) -> None:
        """The worker runs ``job``: meanwhile run the links after it here."""
        while job not in self._done:
            link = self._next_link()
            if link is None or link.index - job.index > _MAX_AHEAD:
                self._receive()
            else:
                self._run_here(link, waiting_for=job)

    def close(self) -> None:
        """Stop the worker (it holds nothing that needs saving)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._connection.close()
