"""One attempt at an epoch: the steps from the accepted weights, then the full training loss.

An attempt depends only on the weights it starts from, the schedule state and its index
(which seeds the shuffle), so the same attempt computed twice, in this process or another,
gives the same result. The engine decides from the result whether the epoch is accepted.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from marginlab.measure.gradient import evaluation_and_grad, log_loss_and_grad
from marginlab.measure.margins import Evaluation, evaluate
from marginlab.numerics import logaddexp
from marginlab.training.assembly import Assembly
from marginlab.training.distributed import DataParallel
from marginlab.training.schedules import Schedule, ScheduleState

# Above this, exp() of a step factor is not a float64: the step could only make the
# weights inf, so the attempt is aborted like one whose loss is not finite.
LOG_LARGEST_STEP = math.log(sys.float_info.max)

# (log L, grad log L) over the full training set at the weights an attempt starts from.
Gradient = tuple[float, list[torch.Tensor]]


@dataclass
class Attempt:
    """What one attempt did.

    Attributes
    ----------
    completed : bool
        False when the schedule aborted it (a batch loss too far above the frame, or nan).
    log_lr_sum : float
        Log of the sum of the learning rates of its steps.
    log_lr : float or None
        Log learning rate of its last step.
    steps : int
        Steps taken (0 when aborted).
    evaluation : Evaluation or None
        The full training set at the weights it ended with; None when aborted, since an
        aborted attempt is rejected whatever its loss.
    start_gradient : Gradient or None
        Full batch only: the gradient at the starting weights, which a retry reuses.
    end_gradient : Gradient or None
        Full batch under a schedule that never rolls back: the gradient at the weights it
        ended with, from the same pass as its evaluation, for the next epoch to start from.
    norm : float or None
        ``||theta||`` at the weights it ended with, when the executor computed it (replicas
        compute theirs together); otherwise a trace computes it.
    """

    completed: bool
    log_lr_sum: float
    log_lr: float | None
    steps: int
    evaluation: Evaluation | None
    start_gradient: Gradient | None = None
    end_gradient: Gradient | None = None
    norm: float | None = None


class Cancelled(Exception):
    """Raised by :func:`run_attempt` when its ``cancelled`` callback says to stop."""


def shuffle_generator(seed: int, attempt: int) -> torch.Generator:
    """A generator per attempt, derived from the seed: a resumed run reshuffles identically."""
    return torch.Generator().manual_seed(seed * 1_000_003 + attempt)


def parameter_norm(params: list[torch.Tensor]) -> float:
    """``||theta||`` over ``params``: each tensor's norm in its dtype, summed in float64."""
    with torch.no_grad():
        return math.sqrt(sum(float(norm) ** 2 for norm in torch._foreach_norm(params)))


def log_step_factor(
    schedule: Schedule,
    state: ScheduleState,
    log_batch_loss: float,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    norms: tuple[float, float] | None = None,
) -> float | None:
    """The schedule's ``log(eta * L_B)``; a schedule whose ``uses_norm`` is true also gets
    the norm of the weights the step starts from (``norm=``), and one whose
    ``uses_gradient_norm`` is true the norm of ``grad log L_B`` (``gradient_norm=``).
    ``norms``, when given, are those two norms already computed (replicas compute them
    together)."""
    wanted = {}
    if getattr(schedule, "uses_norm", False):
        wanted["norm"] = parameter_norm(params) if norms is None else norms[0]
    if getattr(schedule, "uses_gradient_norm", False):
        wanted["gradient_norm"] = parameter_norm(grads) if norms is None else norms[1]
    return schedule.log_step_factor(state, log_batch_loss, **wanted)


def evaluate_split(
    parts: Assembly, x: torch.Tensor, y: torch.Tensor, parallel: DataParallel | None = None
) -> Evaluation:
    """Forward ``x`` through the run's model (across ranks when data-parallel)."""
    run = parallel.evaluate if parallel else evaluate
    return run(parts.model, x, y, parts.loss, parts.config.train.chunk_size)


def run_attempt(
    parts: Assembly,
    params: list[torch.Tensor],
    schedule: ScheduleState,
    index: int,
    *,
    start_gradient: Gradient | None = None,
    parallel: DataParallel | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Attempt:
    """Train ``params`` in place for one attempt and evaluate the training set after it.

    Parameters
    ----------
    parts : Assembly
        The run's model, data, loss and schedule.
    params : list of torch.Tensor
        The trainable parameters of ``parts.model``, holding the starting weights.
    schedule : ScheduleState
        The schedule state the attempt runs under.
    index : int
        The attempt's number in the run; it seeds the shuffle.
    start_gradient : Gradient, optional
        Full batch only: the gradient at the starting weights, if already known.
    parallel : DataParallel, optional
        The process group when the data set is sharded across ranks.
    cancelled : callable, optional
        Polled before every step; when it returns True the attempt stops.

    Returns
    -------
    Attempt

    Raises
    ------
    Cancelled
        When ``cancelled`` returned True.

    Examples
    --------
    >>> import torch
    >>> from marginlab.training.assembly import assemble
    >>> from marginlab.config import validate
    >>> from marginlab.measure.margins import trainable_parameters
    >>> parts = assemble(validate({"data": {"name": "digits", "n_train": 100},
    ...     "model": {"kind": "mlp", "hidden": [16]}, "train": {"batch_size": 20}}))
    >>> params = trainable_parameters(parts.model)
    >>> state = parts.schedule.init(evaluate_split(parts, parts.data.x_train,
    ...     parts.data.y_train).log_loss_mean)
    >>> run_attempt(parts, params, state, index=0).steps
    5
    """
    x, y = parts.data.x_train, parts.data.y_train
    batch = parts.config.train.batch_size
    chunk = parts.config.train.chunk_size
    if batch is None:
        batches = [None]
    else:
        order = torch.randperm(len(x), generator=shuffle_generator(parts.config.seed, index))
        order = order.to(x.device)
        # one gather per epoch; the batches are then views
        shuffled_x, shuffled_y = x[order], y[order]
        batches = [slice(i, i + batch) for i in range(0, len(x) - batch + 1, batch)]
    log_lr_sum, log_lr, steps = -math.inf, None, len(batches)
    for rows in batches:
        if cancelled is not None and cancelled():
            raise Cancelled
        if rows is None:
            if start_gradient is None:
                gradient = parallel.log_loss_and_grad if parallel else log_loss_and_grad
                start_gradient = gradient(parts.model, params, x, y, parts.loss, chunk)
            log_batch_loss, grads = start_gradient
        else:
            log_batch_loss, grads = log_loss_and_grad(
                parts.model, params, shuffled_x[rows], shuffled_y[rows], parts.loss, chunk
            )
        log_factor = log_step_factor(parts.schedule, schedule, log_batch_loss, params, grads)
        if log_factor is None or log_factor > LOG_LARGEST_STEP:
            steps = 0
            break
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-math.exp(log_factor))
        log_lr = log_factor - log_batch_loss
        log_lr_sum = logaddexp(log_lr_sum, log_lr)
    evaluation, end_gradient = None, None
    if steps > 0 and batch is None and parallel is None and not parts.schedule.rolls_back:
        # The next epoch needs the gradient here, so one pass gives both.
        evaluation, log_loss, grads = evaluation_and_grad(
            parts.model, params, x, y, parts.loss, chunk
        )
        end_gradient = (log_loss, grads)
    elif steps > 0:
        evaluation = evaluate_split(parts, x, y, parallel)
    return Attempt(
        completed=steps > 0,
        log_lr_sum=log_lr_sum,
        log_lr=log_lr,
        steps=steps,
        evaluation=evaluation,
        start_gradient=start_gradient,
        end_gradient=end_gradient,
    )
