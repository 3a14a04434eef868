"""Log-space helpers: numbers like 1e-882 are carried as their logarithm and only printed.

Every routine here is exact to float64 rounding over the whole range marginlab meets:
arguments from about -1e6 to +1e3 in :func:`log_softplus`, and losses far below the
smallest float64 (``log L`` of -2000 and beyond) in :func:`logistic_inverse_from_log`.
"""

from __future__ import annotations

import math

import torch

LN10 = math.log(10.0)

# Below this, exp(z) < 2e-9 and log(log1p(e^z)) = z - e^z/2 + O(e^{2z}) to float64 precision;
# the direct formula would lose accuracy once e^z becomes subnormal (z < -708).
_SOFTPLUS_TAIL = -20.0
# Above this, softplus(z) = z to float64 precision (e^-40 / 40 < 2^-53).
_SOFTPLUS_LINEAR = 40.0


def log_softplus(z: torch.Tensor) -> torch.Tensor:
    """Return ``log(log(1 + exp(z)))`` without overflow, underflow or cancellation.

    This is the log of the logistic loss at margin ``-z``. Gradients are finite everywhere.

    Parameters
    ----------
    z : torch.Tensor
        Any real tensor (float64 recommended).

    Returns
    -------
    torch.Tensor
        Elementwise ``log(softplus(z))``.

    Examples
    --------
    >>> import torch
    >>> float(log_softplus(torch.tensor([-2000.0], dtype=torch.float64))[0])
    -2000.0
    """
    if not (z.requires_grad and torch.is_grad_enabled()):
        # No gradient to keep finite: the unused branch may overflow harmlessly.
        direct = torch.log(torch.nn.functional.softplus(z, threshold=_SOFTPLUS_LINEAR))
        return torch.where(z < _SOFTPLUS_TAIL, z - 0.5 * torch.exp(z), direct)
    positive = z > 0
    tail = z < _SOFTPLUS_TAIL
    # Each branch sees only arguments where it is accurate, so no branch produces inf/nan
    # that would poison the gradient through torch.where.
    z_pos = torch.where(positive, z, torch.zeros_like(z))
    z_mid = torch.where(positive | tail, torch.full_like(z, -1.0), z)
    z_tail = torch.where(tail, z, torch.full_like(z, 2 * _SOFTPLUS_TAIL))
    out_pos = torch.log(z_pos + torch.log1p(torch.exp(-z_pos)))
    out_mid = torch.log(torch.log1p(torch.exp(z_mid)))
    out_tail = z_tail - 0.5 * torch.exp(z_tail)
    return torch.where(positive, out_pos, torch.where(tail, out_tail, out_mid))


def logistic_inverse_from_log(log_loss: float) -> float:
    """Return ``l^{-1}(L) = -log(exp(L) - 1)`` for the logistic loss, given ``log L``.

    This is the numerator of the smoothed normalized margin of Lyu & Li (App. A, Remark A.4)
    for the logistic and cross-entropy losses. ``L`` itself may be far below float64 range.

    Parameters
    ----------
    log_loss : float
        Natural log of the summed loss ``L``.

    Returns
    -------
    float
        ``-log(expm1(L))``; positive exactly when ``L < ln 2``.

    Examples
    --------
    >>> round(logistic_inverse_from_log(-2000.0), 6)
    2000.0
    """
    if log_loss < _SOFTPLUS_TAIL:
        # -log(expm1(L)) = -log L - log(1 + L/2 + L^2/6 + ...), and L < 2e-9 here.
        loss = math.exp(log_loss)
        return -log_loss - math.log1p(loss / 2 + loss * loss / 6)
    return -math.log(math.expm1(math.exp(log_loss)))


def logaddexp(a: float, b: float) -> float:
    """Return ``log(exp(a) + exp(b))`` for Python floats, accepting ``-inf``.

    Examples
    --------
    >>> logaddexp(float("-inf"), 1.5)
    1.5
    """
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def format_log10(log10_value: float | None, digits: int = 2) -> str:
    """Print a number given by its base-10 logarithm, e.g. ``3.2e-882``.

    Parameters
    ----------
    log10_value : float or None
        ``log10(x)`` of a positive number ``x``; ``None`` or nan prints as ``"-"``.
    digits : int
        Significant digits of the mantissa.

    Returns
    -------
    str

    Examples
    --------
    >>> format_log10(-881.49485)
    '3.2e-882'
    >>> format_log10(0.0)
    '1.0e+00'
    """
    if log10_value is None or math.isnan(log10_value):
        return "-"
    if math.isinf(log10_value):
        return "0" if log10_value < 0 else "inf"
    exponent = math.floor(log10_value)
    mantissa = 10.0 ** (log10_value - exponent)
    rounded = round(mantissa, digits - 1)
    if rounded >= 10.0:
        rounded /= 10.0
        exponent += 1
    return f"{rounded:.{digits - 1}f}e{exponent:+03d}"
