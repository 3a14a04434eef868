"""Learning-rate schedules, expressed in log space.

A step is ``theta -= eta * grad(L_B)`` with ``L_B`` the mean loss of the batch. Since
``grad(L_B) = L_B * grad(log L_B)``, a schedule hands the engine ``log(eta * L_B)``, the
log of the factor in front of the always-O(1) ``grad(log L_B)``; ``L_B`` itself never appears.

A schedule is a small immutable object with three methods (in the spirit of optax):

- ``init(log_loss)`` -> :class:`ScheduleState`, given the initial log mean training loss;
- ``log_step_factor(state, log_batch_loss)`` -> ``log(eta * L_B)`` for the next step, or
  ``None`` to abort the epoch (a failed attempt);
- ``end_epoch(state, log_loss, completed, smoothed_margin=None)`` -> ``(accepted, new_state)``
  after the full training loss of the attempt (and its smoothed margin, where defined) is
  known. A schedule that never rolls back ends its epoch with :func:`advance`.

A schedule whose step depends on the weights sets ``uses_norm = True``; its
``log_step_factor`` is then called with ``norm=||theta||`` (trainable parameters) as well.
One that sets ``uses_gradient_norm = True`` gets ``gradient_norm=||grad log L_B||`` (a
normalized-gradient step, ``theta -= c * g / ||g||``, is ``log(c) - log(gradient_norm)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar


class TrainingStopped(Exception):
    """Raised by a schedule when training cannot continue; the message says why."""


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule carries from epoch to epoch.

    Attributes
    ----------
    alpha : float
        Step-size multiplier (loss-based and normalized schedules); the learning rate for
        the constant schedule.
    log_frame : float
        Log mean training loss at the end of the last accepted epoch.
    rollbacks : int
        Rejected attempts so far.
    smoothed_margin : float or None
        Smoothed normalized margin at the end of the last accepted epoch, kept by the
        loss-based schedule when it guards the margin (and when the margin is defined).
    epochs : int
        Accepted epochs, for schedules that decay with time.
    """

    alpha: float
    log_frame: float
    rollbacks: int = 0
    smoothed_margin: float | None = None
    epochs: int = 0


def advance(
    state: ScheduleState, log_loss: float, completed: bool, what: str
) -> tuple[bool, ScheduleState]:
    """``end_epoch`` of a schedule that never rolls back: the epoch is accepted and counted,
    and the frame moves to ``log_loss``. An aborted attempt or a loss that is not finite
    raises :class:`TrainingStopped` (``what``: the schedule, named in the message).

    Examples
    --------
    >>> accepted, state = advance(ScheduleState(alpha=1.0, log_frame=0.0), -2.0, True, "mine")
    >>> accepted, state.log_frame, state.epochs
    (True, -2.0, 1)
    """
    if not completed or not math.isfinite(log_loss):
        raise TrainingStopped(
            f"training diverged under the {what} schedule (loss became nan or inf); "
            "lower the learning rate (train.lr or train.alpha)"
        )
    # the constructor, not dataclasses.replace: this runs once per epoch of every replica
    return True, ScheduleState(
        state.alpha, log_loss, state.rollbacks, state.smoothed_margin, state.epochs + 1
    )


@dataclass(frozen=True)
class Constant:
    """Constant learning rate ``eta = lr``.

    Examples
    --------
    >>> schedule = Constant(lr=0.01)
    >>> state = schedule.init(log_loss=-1000.0)
    >>> schedule.log_step_factor(state, log_batch_loss=-1000.0) == math.log(0.01) - 1000.0
    True
    """

    lr: float
    # Whether an epoch with a finite loss can be rejected (and its weights rolled back).
    rolls_back: ClassVar[bool] = False

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.lr, log_frame=log_loss)

    def log_step_factor(self, state: ScheduleState, log_batch_loss: float) -> float | None:
        return math.log(self.lr) + log_batch_loss if math.isfinite(log_batch_loss) else None

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        return advance(state, log_loss, completed, "constant")


@dataclass(frozen=True)
class LossBased:
    """The loss-based schedule with rollback of Lyu & Li (App. K.1, code ``LossBasedLRv1``).

    ``eta = alpha / Lbar`` where ``Lbar`` is the mean training loss of the last accepted
    epoch. An epoch is accepted when the full training loss did not increase; then
    ``alpha *= up``. Otherwise the parameters are restored and the epoch is retried with
    ``alpha /= down``. A batch loss above ``loss_ub * Lbar`` (or nan/inf) aborts the attempt.
    Training stops when ``alpha < min_alpha``.

    With ``reject_margin_decrease`` (not in the reference code) an epoch is also rejected
    when it lowered the smoothed normalized margin, so the margin never decreases from one
    accepted epoch to the next. Lyu & Li (Thm 4.2) prove this monotonicity for gradient
    descent with a small enough step; the rejection retries with a smaller one.

    Examples
    --------
    >>> schedule = LossBased()
    >>> state = schedule.init(log_loss=0.0)
    >>> accepted, state = schedule.end_epoch(state, log_loss=-1.0, completed=True)
    >>> accepted, round(state.alpha, 6)
    (True, 0.11487)
    """

    alpha: float = 0.1
    up: float = 2.0**0.2
    down: float = 2.0**0.1
    min_alpha: float = 1e-50
    loss_ub: float = 600.0
    reject_margin_decrease: bool = False
    rolls_back: ClassVar[bool] = True

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.alpha, log_frame=log_loss)

    def log_step_factor(self, state: ScheduleState, log_batch_loss: float) -> float | None:
        relative = log_batch_loss - state.log_frame
        if not math.isfinite(relative) or relative > math.log(self.loss_ub):
            return None
        return math.log(state.alpha) + relative

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        accepted = completed and math.isfinite(log_loss) and log_loss <= state.log_frame
        if accepted and self.reject_margin_decrease:
            accepted = not (
                smoothed_margin is not None
                and state.smoothed_margin is not None
                and smoothed_margin < state.smoothed_margin
            )
        if accepted:
            return True, replace(
                state,
                alpha=state.alpha * self.up,
                log_frame=log_loss,
                smoothed_margin=smoothed_margin,
            )
        return False, self.retry(state)

    def retry(self, state: ScheduleState) -> ScheduleState:
        """The state after a rejected attempt: the next attempt's, from the same weights."""
        alpha = state.alpha / self.down
        if alpha < self.min_alpha:
            raise TrainingStopped(
                f"alpha fell below train.min_alpha={self.min_alpha:g} after "
                f"{state.rollbacks + 1} rollbacks: the loss no longer decreases at any step "
                "size (float precision exhausted, or the model cannot fit the data)"
            )
        return replace(state, alpha=alpha, rollbacks=state.rollbacks + 1)


@dataclass(frozen=True)
class Normalized:
    """Normalized gradient descent ``eta = alpha / L_B`` (no rollback).

    Examples
    --------
    >>> Normalized(alpha=0.5).log_step_factor(ScheduleState(0.5, 0.0), -900.0) == math.log(0.5)
    True
    """

    alpha: float
    rolls_back: ClassVar[bool] = False

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.alpha, log_frame=log_loss)

    def log_step_factor(self, state: ScheduleState, log_batch_loss: float) -> float | None:
        return math.log(self.alpha) if math.isfinite(log_batch_loss) else None

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        return advance(state, log_loss, completed, "normalized")


@dataclass(frozen=True)
class InverseSqrt:
    """A decaying step on ``log L``: ``theta -= lr / sqrt(t + 2) * grad(log L)`` at epoch ``t``.

    This is the step of Chizat & Bach's reference code (``eta_t = c / sqrt(t + 1)`` for
    ``t = 1, 2, ...``), gradient ascent on the soft-min margin ``-log sum_i exp(-q_i)``: with
    the exponential loss, ``grad log L`` is exactly its negative gradient. No rollback.

    Examples
    --------
    >>> schedule = InverseSqrt(lr=0.5)
    >>> state = schedule.init(log_loss=-50.0)
    >>> round(math.exp(schedule.log_step_factor(state, -50.0)), 6)  # 0.5 / sqrt(2)
    0.353553
    >>> _, state = schedule.end_epoch(state, -51.0, True)
    >>> round(math.exp(schedule.log_step_factor(state, -51.0)), 6)  # 0.5 / sqrt(3)
    0.288675
    """

    lr: float
    rolls_back: ClassVar[bool] = False

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.lr, log_frame=log_loss)

    def log_step_factor(self, state: ScheduleState, log_batch_loss: float) -> float | None:
        if not math.isfinite(log_batch_loss):
            return None
        return math.log(self.lr) - 0.5 * math.log(state.epochs + 2.0)

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        return advance(state, log_loss, completed, "inverse_sqrt")


Schedule = Constant | LossBased | Normalized | InverseSqrt
"""The built-in schedules; any object with ``init``, ``log_step_factor``, ``end_epoch`` and
``rolls_back`` works the same (see the module notes)."""
