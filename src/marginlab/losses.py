"""Classification losses evaluated as logarithms of per-sample losses.

Each loss maps the margins of one sample, ``s_n`` (one margin per wrong class; a single
margin ``y f(x)`` for a binary model), to ``log l_n``. The total loss is only ever formed as
``log L = logsumexp_n log l_n``, so losses of 1e-1000 are as ordinary as losses of 1.

- exponential: ``l_n = sum_j exp(-s_nj)``
- logistic: ``l_n = log(1 + sum_j exp(-s_nj))``
- cross-entropy: the same formula as logistic (for a multi-class model it *is* softmax
  cross-entropy; Lyu & Li, App. F); the two names differ only in what users expect to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from marginlab.numerics import log_softplus, logistic_inverse_from_log


@dataclass(frozen=True)
class Loss:
    """A margin-based loss ``l(q) = exp(-f(q))`` known through its logarithm.

    Attributes
    ----------
    name : str
        ``"exponential"``, ``"logistic"`` or ``"cross_entropy"``.
    log_threshold : float
        ``log`` of the summed-loss level below which every sample is classified correctly
        and the smoothed margin is defined (``l(0)``: 1 for exponential, ln 2 otherwise).

    Examples
    --------
    >>> import torch
    >>> loss = get_loss("cross_entropy")
    >>> margins = torch.tensor([[3.0, 5.0]], dtype=torch.float64)
    >>> float(loss.log_per_sample(margins)[0]) < 0
    True
    """

    name: str
    log_threshold: float

    def log_per_sample(self, margins: torch.Tensor) -> torch.Tensor:
        """Return ``log l_n`` for margins of shape ``(N, K)``.

        Parameters
        ----------
        margins : torch.Tensor
            ``(N, K)`` margins ``s_nj`` (float64 recommended); ``K = 1`` for binary models.

        Returns
        -------
        torch.Tensor
            ``(N,)`` per-sample log losses, exact from margins of -1e3 to 1e6.
        """
        if margins.shape[1] == 1:  # a binary model: the logsumexp of one value is that value
            neg_soft_margin = -margins[:, 0]
        else:
            neg_soft_margin = torch.logsumexp(-margins, dim=1)
        if self.name == "exponential":
            return neg_soft_margin
        return log_softplus(neg_soft_margin)

    def inverse_from_log(self, log_loss: float) -> float:
        """Return ``l^{-1}(L)`` from ``log L``: the margin whose loss is ``L``.

        Used by the smoothed margin ``l^{-1}(L) / rho^L`` (Lyu & Li, eq. 3).

        Examples
        --------
        >>> get_loss("exponential").inverse_from_log(-5.0)
        5.0
        """
        if self.name == "exponential":
            return -log_loss
        return logistic_inverse_from_log(log_loss)


LOSSES: dict[str, Loss] = {
    "exponential": Loss("exponential", 0.0),
    "logistic": Loss("logistic", math.log(math.log(2.0))),
    "cross_entropy": Loss("cross_entropy", math.log(math.log(2.0))),
}


def get_loss(name: str) -> Loss:
    """Return the loss called ``name`` (one of :data:`LOSSES`).

    Examples
    --------
    >>> get_loss("logistic").name
    'logistic'
    """
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"loss: unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


def log_sum(log_losses: torch.Tensor) -> float:
    """Return ``log sum_n l_n`` from per-sample log losses.

    Examples
    --------
    >>> import torch, math
    >>> round(log_sum(torch.tensor([-1000.0, -1000.0], dtype=torch.float64)), 6)
    -999.306853
    """
    return float(torch.logsumexp(log_losses.double(), dim=0))


def log_mean(log_losses: torch.Tensor) -> float:
    """Return ``log (1/N) sum_n l_n`` from per-sample log losses.

    Examples
    --------
    >>> import torch
    >>> log_mean(torch.tensor([-1000.0, -1000.0], dtype=torch.float64))
    -1000.0
    """
    return log_sum(log_losses) - math.log(log_losses.numel())
