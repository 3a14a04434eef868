"""The linear hard-margin SVM: the limit direction of a linear model or linear network.

Gradient descent on a separable linear problem with an exponentially tailed loss converges
in direction to the hard-margin SVM without offset (Soudry et al. 2018)

    w* = argmin ||W||_F  s.t.  (w_{y_n} - w_j) . x_n >= 1  for all n, j != y_n

(for a one-output model: ``y_n w . x_n >= 1`` with ``y_n`` in {-1, +1}), whose margin is
``gamma_SVM = 1 / ||w*||``. A deep linear network is ``L``-homogeneous, and its end-to-end
predictor ``W_L ... W_1`` converges in direction to ``w*`` too (Vardi et al., row 1 of the
table in ``chizat-vardi.md`` section 4). In the network's normalization of
:func:`marginlab.measure.margins.margin_metrics`, ``q_min / ||theta||^L`` with ``theta`` all
the weights, the best a depth-``L`` linear network can reach is ``gamma_SVM / L^(L/2)``
(balanced rank-one layers; exact for one output, an upper bound for several).

The QP is solved exactly as a least-distance program (Lawson & Hanson 1974, ch. 23):
``min ||w|| s.t. G w >= h`` is the nonnegative least-squares problem
``min_{u >= 0} ||[G^T; h^T] u - e||`` with ``e = (0, ..., 0, 1)``; from its residual ``r``,
``w = -r[:-1] / r[-1]`` and ``alpha = u / (1 - h^T u)`` are the SVM dual multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch


@dataclass(frozen=True)
class SVMResult:
    """A linear hard-margin SVM solution.

    Attributes
    ----------
    w : numpy.ndarray
        ``w*``: shape ``(d,)`` for one output, ``(C, d)`` otherwise.
    margin : float
        ``gamma_SVM = 1 / ||w*||`` (the smallest margin of ``w* / ||w*||``).
    dual : numpy.ndarray
        SVM multipliers, one per constraint (``(N,)`` or ``(N, C-1)`` in the column order of
        :func:`~marginlab.measure.margins.pairwise_margins`).
    """

    w: np.ndarray
    margin: float
    dual: np.ndarray

    def network_margin(self, order: float = 1.0) -> float:
        """Best ``q_min / ||theta||^L`` of a depth-``L`` linear network: ``gamma / L^(L/2)``.

        Examples
        --------
        >>> SVMResult(np.array([0.5, -1.0]), 0.894427191, np.zeros(2)).network_margin(2.0)
        0.4472135955
        """
        return self.margin / order ** (order / 2.0)

    @property
    def support(self) -> np.ndarray:
        """Indices of the samples with a positive multiplier (the support vectors)."""
        dual = self.dual.reshape(len(self.dual), -1)
        return np.flatnonzero((dual > 0).any(axis=1))

    def to_dict(self) -> dict:
        return {
            "w": self.w.tolist(),
            "margin": self.margin,
            "support": self.support.tolist(),
        }


def least_distance(g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``min ||w||_2 s.t. g w >= h`` exactly; return ``w`` and the multipliers.

    Parameters
    ----------
    g : numpy.ndarray
        ``(m, d)`` constraint matrix.
    h : numpy.ndarray
        ``(m,)`` right-hand side.

    Returns
    -------
    w : numpy.ndarray
        The minimum-norm feasible point.
    alpha : numpy.ndarray
        ``alpha >= 0`` with ``w = g^T alpha`` (the dual of ``min 1/2 ||w||^2``).

    Raises
    ------
    ValueError
        If the constraints are infeasible (for an SVM: the data are not separable).

    Examples
    --------
    >>> w, alpha = least_distance(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([1.0, 1.0]))
    >>> w.round(12).tolist(), alpha.round(12).tolist()
    ([1.0, 0.5], [1.0, 0.25])
    """
    g, h = np.asarray(g, dtype=float), np.asarray(h, dtype=float)
    e = np.zeros(g.shape[1] + 1)
    e[-1] = 1.0
    u, _ = scipy.optimize.nnls(np.vstack([g.T, h]), e, maxiter=50 * (g.shape[0] + 10))
    denominator = 1.0 - h @ u
    if denominator <= 1e-12:
        raise ValueError(
            "g, h: the constraints g w >= h have no solution (for an SVM: the data are not "
            "separable by a linear classifier through the origin)"
        )
    alpha = u / denominator
    return g.T @ alpha, alpha


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().double().cpu().numpy()
    return np.asarray(x, dtype=float)


def linear_svm(
    x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, n_outputs: int = 1
) -> SVMResult:
    """Hard-margin linear SVM without offset, in the convention of the network's outputs.

    Parameters
    ----------
    x : array-like
        ``(N, ...)`` inputs (flattened).
    y : array-like
        ``(N,)`` class indices (``0``/``1`` for a one-output model).
    n_outputs : int
        1 for the binary ``y w . x`` form, else the number of classes ``C`` (the multi-class
        SVM on pairwise margins, which a two-output cross-entropy model also uses).

    Returns
    -------
    SVMResult

    Examples
    --------
    >>> x = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> result = linear_svm(x, np.array([1, 0]))
    >>> result.w.round(12).tolist(), round(result.margin, 9)
    ([0.5, -1.0], 0.894427191)
    """
    x = _as_numpy(x).reshape(len(x), -1)
    y = _as_numpy(y).astype(int)
    n, d = x.shape
    if n_outputs == 1:
        g = (2.0 * y - 1.0)[:, None] * x
        w, alpha = least_distance(g, np.ones(n))
        return SVMResult(w, 1.0 / float(np.linalg.norm(w)), alpha)
    classes = n_outputs
    others = np.array([[j for j in range(classes) if j != c] for c in range(classes)])[y]
    rows = np.zeros((n, classes - 1, classes, d))
    index = np.arange(n)
    for k in range(classes - 1):
        rows[index, k, y] += x
        rows[index, k, others[:, k]] -= x
    w, alpha = least_distance(
        rows.reshape(n * (classes - 1), classes * d), np.ones(n * (classes - 1))
    )
    return SVMResult(w.reshape(classes, d), 1.0 / float(np.linalg.norm(w)), alpha.reshape(n, -1))


def direction_error(
    theta_end_to_end: torch.Tensor | np.ndarray, w_star: torch.Tensor | np.ndarray
) -> float:
    """Return ``|| theta / ||theta|| - w* / ||w*|| ||`` (flattened), in ``[0, 2]``.

    Parameters
    ----------
    theta_end_to_end : array-like
        The trained linear predictor (``model.end_to_end()`` of a linear network).
    w_star : array-like
        The SVM solution of the same shape.

    Examples
    --------
    >>> direction_error(np.array([2.0, 0.0]), np.array([1.0, 0.0]))
    0.0
    """
    a = _as_numpy(theta_end_to_end).ravel()
    b = _as_numpy(w_star).ravel()
    if a.shape != b.shape:
        raise ValueError(
            f"theta_end_to_end: shape {a.shape} does not match w_star {b.shape}; pass the "
            "end-to-end predictor (model.end_to_end()) of the same model"
        )
    return float(np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b)))
