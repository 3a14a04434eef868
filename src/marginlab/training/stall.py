"""Notice a rolling-back schedule that no longer gets anywhere, and say why it stopped.

The loss-based schedule (``eta = alpha / L``) assumes that the loss can be driven to zero.
On data that the model cannot separate it cannot: the loss settles above its minimum and
the schedule alternates between growing alpha and rolling back, for ever. Two signs end
such a run early with a message that names what was seen and what to try:

- many attempts in a row rolled back without one accepted epoch (alpha collapsing);
- over a window of attempts, the mean training loss fell by less than a hundredth of the way
  (in log) to where the training set is fitted (the summed loss below ``l(0)``).

Once the training set is fitted the second sign never fires: a fitted run slows down only
where float precision ends, which alpha's floor (``train.min_alpha``) already catches.
"""

from __future__ import annotations

import math
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
        The progress asked of each window: ``1 / windows_to_fit`` of the way from its
        ``log L`` to ``log_fitted`` (``log L``: natural log of the mean training loss).

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
    _epoch: int | None = None
    _rejected: int = 0
    _attempts: int = 0
    _window_start: float = math.inf

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
            self._window_start = log_loss
        self._attempts += 1
        if self._attempts < self.window:
            return
        fallen, left = self._window_start - log_loss, log_loss - self.log_fitted
        if fallen * self.windows_to_fit < left:
            pace = (
                "it did not fall at all"
                if fallen <= 0
                else f"at that pace fitting it would take about "
                f"{left / fallen * self._attempts:.2g} more attempts"
            )
            raise TrainingStopped(
                f"the training loss (nearly) stopped falling while the training set is not fitted: "
                f"over the last {self._attempts} attempts its mean went from "
                f"{math.exp(self._window_start):.6g} to {math.exp(log_loss):.6g} (epoch "
                f"{epoch}), and {pace}. The data are probably not separable by this model, "
                "and the loss-based schedule, made for a loss that goes to zero, cannot help; "
                "try a larger model, other classes (data.classes), or train.schedule=constant "
                "with train.max_epochs to study the non-separable case"
            )
        self._attempts = 0
