"""Notice a rolling-back schedule that no longer gets anywhere, and say why it stopped.

The loss-based schedule (``eta = alpha / L``) assumes that the loss can be driven to zero.
On data that the model cannot separate it cannot: the loss settles above its minimum and
the schedule alternates between growing alpha and rolling back, for ever. Two signs end
such a run early with a message that names what was seen and what to try:

- many attempts in a row rolled back without one accepted epoch (alpha collapsing);
- over a window of attempts, the mean training loss fell too slowly to fit the training set
  (the summed loss below ``l(0)``) within a hundred windows of full length: at its pace,
  fitting would take more than ``WINDOW * WINDOWS_TO_FIT`` attempts.

A window ends after ``WINDOW`` attempts, or sooner after ``WINDOW_SECONDS`` (and at least
``MIN_WINDOW`` attempts): a minibatch attempt (a whole epoch) can cost a second, and a run
that cannot fit its data should stop within a minute, not after two thousand attempts. The
pace asked of a window is the same whatever its length, so a shorter window is no stricter.

Once the training set is fitted the second sign never fires: a fitted run slows down only
where float precision ends, which alpha's floor (``train.min_alpha``) already catches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from marginlab.training.schedules import TrainingStopped

# Enough to tell a collapse from the edge of stability, where about two of three attempts
# are rolled back: 1000 rollbacks in a row divide alpha by 2^100 under the default factors.
ROLLBACKS_IN_A_ROW = 1000
# Attempts over which a not-fitted run must lower its mean loss, and at what pace: by at
# least 1/WINDOWS_TO_FIT of the way (in log L) to a fitted training set. A run that fits its
# data does it in far fewer attempts (digits-cnn: about 100, MNIST: a few epochs).
WINDOW = 1000
WINDOWS_TO_FIT = 100
# A window ends after this many seconds once it holds MIN_WINDOW attempts. A healthy run
# falls far faster than the pace asked in any stretch that long: digits-cnn fits its data
# in about 200 attempts and 10 s (loss from 1e0.4 to 1e-4 mean), without a plateau.
WINDOW_SECONDS = 15.0
MIN_WINDOW = 20


@dataclass
class StallWatch:
    """Watch the attempts of one run under a schedule that rolls back.

    Parameters
    ----------
    log_fitted : float
        The training set counts as fitted once the natural log of the mean training loss
        is below this (``log l(0) - log n``: the summed loss below ``l(0)``).
    rollbacks_in_a_row : int
        Stop after this many consecutive rejected attempts.
    window : int
        Attempts over which a not-fitted run must make progress.
    windows_to_fit : float
        The progress asked of a window of ``window`` attempts: ``1 / windows_to_fit`` of
        the way from its ``log L`` to ``log_fitted`` (``log L``: natural log of the mean
        training loss); of a shorter window, in proportion to its attempts.
    window_seconds, min_window : float, int
        A window also ends after ``window_seconds`` once it holds ``min_window`` attempts.
    clock : callable
        Seconds, for the windows' time (``time.monotonic``).

    Examples
    --------
    A mean loss stuck at 0.3 on data that are not fitted stops after one window:

    >>> watch = StallWatch(log_fitted=math.log(0.01), window=10)
    >>> for attempt in range(9):
    ...     watch.see(epoch=attempt // 3, log_loss=math.log(0.3))
    >>> watch.see(epoch=3, log_loss=math.log(0.3))
    Traceback (most recent call last):
    ...
    marginlab.training.schedules.TrainingStopped: the training loss (nearly) stopped falling ...
    """

    log_fitted: float
    rollbacks_in_a_row: int = ROLLBACKS_IN_A_ROW
    window: int = WINDOW
    windows_to_fit: float = WINDOWS_TO_FIT
    window_seconds: float = WINDOW_SECONDS
    min_window: int = MIN_WINDOW
    clock: Callable[[], float] = time.monotonic
    _epoch: int | None = None
    _rejected: int = 0
    _attempts: int = 0
    _window_start: float = math.inf
    _window_began: float = 0.0

    def see(self, epoch: int, log_loss: float) -> None:
        """Record one attempt: the run's accepted epochs after it, and the mean training
        loss (natural log) of its accepted weights. Raises :class:`TrainingStopped` when
        the run has stalled."""
        accepted = self._epoch is None or epoch > self._epoch
        self._epoch = epoch
        self._rejected = 0 if accepted else self._rejected + 1
        if self._rejected >= self.rollbacks_in_a_row:
            raise TrainingStopped(
                f"{self._rejected} attempts in a row were rolled back without an accepted "
                f"epoch (at epoch {epoch}): no step size lowers the training loss any more "
                "(the model may not fit these data, or float precision is exhausted); try "
                "a larger model, dtype=float64, or train.schedule=constant"
            )
        if log_loss < self.log_fitted:
            self._attempts, self._window_start = 0, math.inf
            return
        if self._attempts == 0:
            self._window_start, self._window_began = log_loss, self.clock()
        self._attempts += 1
        seconds = self.clock() - self._window_began
        if self._attempts < self.window and (
            self._attempts < self.min_window or seconds < self.window_seconds
        ):
            return
        fallen, left = self._window_start - log_loss, log_loss - self.log_fitted
        # at this pace fitting takes left / fallen * attempts more attempts: too many?
        if fallen * self.window * self.windows_to_fit < left * self._attempts:
            pace = (
                "it did not fall at all"
                if fallen <= 0
                else f"at that pace fitting it would take about "
                f"{left / fallen * self._attempts:.2g} more attempts"
            )
            raise TrainingStopped(
                f"the training loss (nearly) stopped falling while the training set is not fitted: "
                f"over the last {self._attempts} attempts ({seconds:.0f} s) its mean went from "
                f"{math.exp(self._window_start):.6g} to {math.exp(log_loss):.6g} (epoch "
                f"{epoch}), and {pace}. The data are probably not separable by this model, "
                "and the loss-based schedule, made for a loss that goes to zero, cannot help; "
                "try a larger model, other classes (data.classes), or train.schedule=constant "
                "with train.max_epochs to study the non-separable case"
            )
        self._attempts = 0
