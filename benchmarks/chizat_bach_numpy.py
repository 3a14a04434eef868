"""NumPy transcriptions of Chizat & Bach's reference loop (``twonet``, both layers).

The baseline of ``bench_chizat_bach.py``: a direct float64 transcription of the Julia code
(``chizat-vardi.md`` section 1) and a careful float32 version of the same step (preallocated
buffers, in-place updates, one fused product for the input-layer gradient). Both maximize
the soft-min margin ``S(W) = -log sum_i exp(-q_i)`` with ``q_i = y_i f(x_i)``,
``f(x) = (1/m) sum_j b_j relu(<a_j, x>)``, by ``W += eta_t m grad S`` with
``eta_t = stepsize / sqrt(t + 1)``, and record the normalized margin
``min_i q_i / ((1/m) sum_j ||theta_j||^2)``.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.uniform(-0.5, 0.5, (32, 5)), rng.choice([-1.0, 1.0], 32)
>>> w = rng.standard_normal((50, 6))
>>> margins = twonet_float64(x, y, w.copy(), 0.5, 10)
>>> bool(np.allclose(margins, twonet_float32(x, y, w.copy(), 0.5, 10), atol=1e-5))
True
"""

from __future__ import annotations

import numpy as np


def twonet_float64(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, stepsize: float, niter: int
) -> np.ndarray:
    """Run ``niter`` steps as the reference code does, in float64; return the margins.

    Parameters
    ----------
    x : ndarray, shape (n, d)
        Inputs, the constant bias coordinate included.
    y : ndarray, shape (n,)
        Labels in {-1, +1}.
    w : ndarray, shape (m, d + 1)
        Neurons ``(a_j, b_j)``, updated in place.
    stepsize, niter : float, int
        ``eta_t = stepsize / sqrt(t + 1)`` for ``t = 1..niter``.
    """
    m, d = w.shape[0], x.shape[1]
    margins = np.empty(niter)
    for t in range(1, niter + 1):
        a, b = w[:, :d], w[:, d]
        z = x @ a.T
        act = np.maximum(z, 0.0)
        q = y * (act @ b) / m
        q_min = q.min()
        p = np.exp(q_min - q)
        p /= p.sum()
        py = p * y
        grad_a = b[:, None] * (((z > 0) * py[:, None]).T @ x)
        grad_b = act.T @ py
        margins[t - 1] = q_min / (np.sum(w**2) / m)
        eta = stepsize / np.sqrt(t + 1)
        w[:, :d] += eta * grad_a
        w[:, d] += eta * grad_b
    return margins


def twonet_float32(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, stepsize: float, niter: int
) -> np.ndarray:
    """The same loop in float32 with preallocated buffers; the margins are returned in float64.

    Only the stored margin is formed in float64 (its numerator and the norm), since it is
    what the experiment reports and it changes by parts in 1e5 late in training.
    """
    m, d = w.shape[0], x.shape[1]
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    w32 = w.astype(np.float32)
    # Row j of w32 is (a_j, b_j); the step writes both layers through one (m, d + 1) update.
    z = np.empty((x.shape[0], m), np.float32)
    act = np.empty_like(z)
    grad = np.empty_like(w32)
    margins = np.empty(niter)
    for t in range(1, niter + 1):
        np.matmul(x32, w32[:, :d].T, out=z)
        np.maximum(z, 0.0, out=act)
        q = y32 * (act @ w32[:, d]) * np.float32(1.0 / m)
        q_min = q.min()
        p = np.exp(q_min - q)
        py = p * (y32 / p.sum())
        # relu'(z) * py: zero the inactive units in place of building a boolean product.
        np.multiply(z > 0, py[:, None], out=z)
        np.matmul(z.T, x32, out=grad[:, :d])
        grad[:, :d] *= w32[:, d, None]
        np.matmul(act.T, py, out=grad[:, d])
        margins[t - 1] = float(q_min) / (float(np.sum(w32.astype(np.float64) ** 2)) / m)
        w32 += np.float32(stepsize / np.sqrt(t + 1)) * grad
    w[:] = w32
    return margins
