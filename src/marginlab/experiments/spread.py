"""How many standard errors a criterion allows when the spread comes from the same draws.

A criterion that allows "k standard errors" means the two-sided coverage of a normal
variable, ``P(|Z| <= k)`` (99.73% for 3, 95.45% for 2). That holds when the standard error is
known. A reproduction estimates it from its own few repetitions, and a standard deviation
estimated from two draws can be arbitrarily small: three estimated standard errors then
cover a true mean only 80% of the time. Student's t quantile with the estimate's degrees of
freedom restores the stated coverage: :func:`se_multiple`.
"""

from __future__ import annotations

# scipy.special, not scipy.stats: the same quantiles without a second of imports
from scipy.special import ndtr, stdtrit


def se_multiple(sigmas: float, dof: int) -> float:
    """The multiple of an estimated standard error with the coverage of ``sigmas`` known ones.

    Parameters
    ----------
    sigmas : float
        The allowance in standard errors of a known spread (its normal two-sided coverage is
        kept).
    dof : int
        Degrees of freedom of the spread's estimate: ``R - 1`` for the mean (or the mean of
        paired differences) of ``R`` repetitions, ``N - 2`` for a least-squares slope.

    Returns
    -------
    float
        Student's t quantile at the same coverage: 235.8 for 3 sigmas at 1 degree of
        freedom, 19.2 at 2, 4.09 at 9, 3.45 at 19; ``sigmas`` itself as ``dof`` grows.

    Examples
    --------
    >>> round(se_multiple(3.0, 19), 2), round(se_multiple(2.0, 1), 1)
    (3.45, 14.0)
    """
    if not sigmas > 0:
        raise ValueError(f"sigmas: expected a positive number of standard errors, got {sigmas}")
    if int(dof) != dof or dof < 1:
        raise ValueError(
            f"dof: expected a whole number of degrees of freedom >= 1 (two repetitions or "
            f"more), got {dof}"
        )
    return float(stdtrit(int(dof), ndtr(sigmas)))
