"""The F1 (variation-norm) max-margin classifier: the limit of two-layer ReLU training.

Chizat & Bach (2020; ``chizat-vardi.md`` sections 1 and 3.1): training both layers of a wide
two-layer ReLU network converges in direction to a maximizer of

    gamma_1 = max { min_n y_n f(x_n) : f = int relu(theta . x) dnu(theta), |nu|(S^{d-1}) <= 1 }
            = min_{p in simplex} max_{||theta|| = 1} |g_p(theta)|,
    g_p(theta) = sum_n p_n y_n relu(theta . x_n).

On a finite dictionary of directions the primal is a linear program; any feasible measure
gives a **lower bound**, and any ``p`` gives an **upper bound** ``max_theta |g_p(theta)|``
provided the inner maximum is computed exactly. Column generation alternates the LP with
this oracle, adding the maximizing directions, until the bounds meet.

The oracle is exact for ``d <= 3`` (``g_p`` is piecewise linear on the sphere, so its maximum
lies at a vertex of the arrangement of the great circles ``theta . x_n = 0``, at the best point
of an arc, or at ``v_A / ||v_A||`` inside a cell with activation pattern ``A``; all are
enumerated, ``O(n^2)`` candidates) and then the gap is certified. For ``d > 3`` it is a
multistart projected subgradient ascent and the upper bound is a heuristic.

Normalizations (the bias is a constant input coordinate, counted in ``d``; a
``bias="first"`` network is the same with a column of ones appended to the inputs):

- ``gamma_1`` as above (``||f||_F1 = inf |nu|``);
- Chizat & Bach's code reports ``min_n q_n / ((1/m) sum_j ||theta_j||^2)``, which is at most
  ``gamma_1 / 2``;
- the network's normalized margin ``q_min / ||theta||^2`` of a width-``m`` mean-field
  :class:`~marginlab.models.TwoLayer` (:mod:`marginlab.measure.margins`) is at most
  ``gamma_1 / (2 m)``, with equality for a balanced network realizing an optimal measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from marginlab.measure.references.svm import _as_numpy

METHODS = ("column_generation", "grid")
_TINY = 1e-12


@dataclass(frozen=True)
class F1Result:
    """Bounds on ``gamma_1`` and the measure attaining the lower bound.

    Attributes
    ----------
    lower : float
        Margin of the returned measure (a feasible point): ``gamma_1 >= lower``.
    upper : float
        ``max_theta |g_p(theta)|`` for the returned dual ``p``: ``gamma_1 <= upper`` when
        ``certified``.
    certified : bool
        Whether the inner maximization was exact (``d <= 3``).
    directions : numpy.ndarray
        ``(k, d)`` unit directions carrying the measure.
    weights : numpy.ndarray
        ``(k,)`` signed masses, ``sum |weights| = 1``.
    dual : numpy.ndarray
        ``(n,)`` the dual distribution ``p`` over samples.
    rounds : int
        Linear programs solved.
    n_directions : int
        Size of the final dictionary.
    method : str
        ``"column_generation"`` or ``"grid"``.
    """

    lower: float
    upper: float
    certified: bool
    directions: np.ndarray
    weights: np.ndarray
    dual: np.ndarray
    rounds: int
    n_directions: int
    method: str

    @property
    def gap(self) -> float:
        """Relative gap ``(upper - lower) / lower``."""
        return (self.upper - self.lower) / self.lower

    def network_margin(self, width: int) -> float:
        """``lower / (2 m)``: the best ``q_min / ||theta||^2`` of a width-``m`` ``TwoLayer``.

        Examples
        --------
        >>> F1Result(0.04, 0.04, True, np.zeros((1, 3)), np.ones(1), np.ones(2), 1, 1,
        ...          "grid").network_margin(100)
        0.0002
        """
        return self.lower / (2.0 * width)

    def decision(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """The classifier's output ``f(x) = sum_k weights_k relu(directions_k . x)``.

        Examples
        --------
        >>> result = F1Result(0.5, 0.5, True, np.eye(2), np.array([0.5, -0.5]), np.ones(2),
        ...                   1, 2, "grid")
        >>> result.decision(np.array([[2.0, 1.0]])).tolist()
        [0.5]
        """
        x = _as_numpy(x)
        return np.maximum(x.reshape(len(x), -1) @ self.directions.T, 0.0) @ self.weights

    def to_dict(self) -> dict:
        return {
            "gamma_1": self.lower,
            "lower": self.lower,
            "upper": self.upper,
            "gap": self.gap,
            "certified": self.certified,
            "code_normalization": self.lower / 2.0,
            "directions": self.directions.tolist(),
            "weights": self.weights.tolist(),
            "rounds": self.rounds,
            "n_directions": self.n_directions,
            "method": self.method,
        }


def sphere_grid(d: int, size: int) -> np.ndarray:
    """Nearly uniform unit directions in ``R^d``: equispaced angles (``d = 2``) or a
    Fibonacci sphere (``d = 3``).

    Examples
    --------
    >>> grid = sphere_grid(3, 1000)
    >>> grid.shape, bool(np.allclose(np.linalg.norm(grid, axis=1), 1.0))
    ((1000, 3), True)
    """
    if d == 2:
        angles = 2.0 * np.pi * np.arange(size) / size
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if d == 3:
        k = np.arange(size) + 0.5
        z = 1.0 - 2.0 * k / size
        radius = np.sqrt(1.0 - z * z)
        angle = np.pi * (1.0 + 5.0**0.5) * k
        return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)
    raise ValueError(
        f"d: a sphere grid is only practical for d = 2 or 3 (got d={d}); use "
        "method='column_generation'"
    )


def _values(directions: np.ndarray, x: np.ndarray, coeff: np.ndarray) -> np.ndarray:
    """``g(theta) = sum_n coeff_n relu(theta . x_n)`` for each row ``theta``."""
    return np.maximum(directions @ x.T, 0.0) @ coeff


def _unit_rows(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1)
    keep = norms > _TINY
    return v[keep] / norms[keep, None]


def _circle_candidates(
    basis: np.ndarray, x: np.ndarray, coeff: np.ndarray, exclude: int | None
) -> np.ndarray:
    """Candidate maximizers of ``g`` on the great circle spanned by ``basis`` (2, d).

    On the circle ``theta(phi) = cos phi e_0 + sin phi e_1`` the activation pattern only
    changes where ``theta . x_k = 0``. Candidates: those crossing points, the best point of
    each arc (the normalized projection of ``v_A = sum_{k in A} coeff_k x_k``), and, in
    ``d = 3`` where the circle lies in the plane ``x_exclude^perp``, the cell points
    ``v_A / ||v_A||`` of the two cells on either side of each arc.
    """
    a, b = x @ basis[0], x @ basis[1]
    crosses = a * a + b * b > _TINY
    if exclude is not None:
        crosses[exclude] = False
    first = np.arctan2(-a[crosses], b[crosses])
    phis = np.sort(np.mod(np.concatenate([first, first + np.pi]), 2.0 * np.pi))
    if len(phis) == 0:
        phis = np.array([0.0])
    mids = 0.5 * (phis + np.append(phis[1:], phis[0] + 2.0 * np.pi))
    vertices = np.cos(phis)[:, None] * basis[0] + np.sin(phis)[:, None] * basis[1]
    middles = np.cos(mids)[:, None] * basis[0] + np.sin(mids)[:, None] * basis[1]
    patterns = (middles @ x.T > 0) & crosses
    v = patterns.astype(float) @ (coeff[:, None] * x)
    candidates = [vertices, _unit_rows((v @ basis.T) @ basis)]
    if exclude is not None:
        candidates += [_unit_rows(v), _unit_rows(v + coeff[exclude] * x[exclude])]
    return np.concatenate(candidates)


def _exact_candidates(x: np.ndarray, coeff: np.ndarray) -> list[np.ndarray]:
    """Candidate sets containing a maximizer of ``g`` over ``S^{d-1}`` for ``d <= 3``."""
    d = x.shape[1]
    if d == 1:
        return [np.array([[1.0], [-1.0]])]
    if d == 2:
        return [_circle_candidates(np.eye(2), x, coeff, None)]
    sets = []
    for i, xi in enumerate(x):
        if np.linalg.norm(xi) <= _TINY:
            continue
        # An orthonormal basis of x_i^perp: the last two right singular vectors.
        basis = np.linalg.svd(xi[None, :])[2][1:]
        sets.append(_circle_candidates(basis, x, coeff, i))
    return sets


def _ascent_candidates(
    x: np.ndarray, coeff: np.ndarray, starts: np.ndarray, iterations: int
) -> np.ndarray:
    """Best iterates of projected subgradient ascent of ``g`` on the sphere, one per start.

    Step ``0.5 / (sqrt(t) sum |coeff_n| ||x_n||)`` along the tangent subgradient
    (``chizat-vardi.md`` 3.1(b)); the plain fixed-point update is not monotone with
    mixed signs and stalls, so it is not used.
    """
    theta = _unit_rows(starts)
    best, best_value = theta.copy(), _values(theta, x, coeff)
    scale = float(np.abs(coeff) @ np.linalg.norm(x, axis=1))
    for t in range(1, iterations + 1):
        g = ((theta @ x.T > 0) * coeff) @ x
        g -= np.sum(g * theta, axis=1, keepdims=True) * theta
        theta = theta + (0.5 / (np.sqrt(t) * scale)) * g
        theta /= np.linalg.norm(theta, axis=1, keepdims=True)
        value = _values(theta, x, coeff)
        better = value > best_value
        best[better], best_value[better] = theta[better], value[better]
    return best


def sphere_maximum(
    x: torch.Tensor | np.ndarray,
    coeff: np.ndarray,
    *,
    top: int = 20,
    exact: bool | None = None,
    starts: int = 300,
    iterations: int = 200,
    extra_starts: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Maximize ``g(theta) = sum_n coeff_n relu(theta . x_n)`` over unit ``theta``.

    Parameters
    ----------
    x : array-like
        ``(n, d)`` inputs.
    coeff : numpy.ndarray
        ``(n,)`` signed coefficients (``p_n y_n`` in the F1 dual).
    top : int
        Number of distinct best directions returned.
    exact : bool, optional
        Enumerate the arrangement (default: when ``d <= 3``); otherwise ascend from
        ``starts`` random points, the normalized inputs and ``extra_starts``.
    starts, iterations : int
        Multistart ascent settings (``exact=False`` only).
    extra_starts : numpy.ndarray, optional
        Further ascent starting points, e.g. the current support of a measure.
    seed : int
        Seed of the random starts.

    Returns
    -------
    directions : numpy.ndarray
        ``(<= top, d)`` best directions found, best first.
    values : numpy.ndarray
        ``g`` at those directions; ``values[0]`` is the maximum when ``is_exact``.
    is_exact : bool
        Whether ``values[0]`` is the exact maximum.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> directions, values, exact = sphere_maximum(x, np.array([1.0, 1.0]), top=1)
    >>> directions.round(6).tolist(), round(float(values[0]), 9), exact
    ([[0.707107, 0.707107]], 1.414213562, True)
    """
    x = _as_numpy(x)
    x = x.reshape(len(x), -1)
    coeff = np.asarray(coeff, dtype=float)
    exact = x.shape[1] <= 3 if exact is None else exact
    if exact:
        if x.shape[1] > 3:
            raise ValueError(f"exact: enumeration is implemented for d <= 3, got d={x.shape[1]}")
        sets = _exact_candidates(x, coeff)
    else:
        rng = np.random.default_rng(seed)
        pool = [rng.standard_normal((starts, x.shape[1])), x]
        if extra_starts is not None and len(extra_starts):
            pool.append(np.asarray(extra_starts, dtype=float))
        sets = [_ascent_candidates(x, coeff, np.concatenate(pool), iterations)]
    # Keep the best few of each candidate set so memory stays O(n) per set.
    kept = []
    for candidates in sets:
        values = _values(candidates, x, coeff)
        order = np.argsort(-values)[: 4 * top]
        kept.append((candidates[order], values[order]))
    directions = np.concatenate([k[0] for k in kept])
    values = np.concatenate([k[1] for k in kept])
    order = np.argsort(-values)
    directions, values = directions[order], values[order]
    # Distinct directions only: duplicates would add identical LP columns.
    _, first = np.unique(np.round(directions, 9), axis=0, return_index=True)
    first = np.sort(first)[:top]
    return directions[first], values[first], exact


def _restricted_lp(features: np.ndarray, signs: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``max gamma s.t. y_n (Phi c)_n >= gamma, ||c||_1 <= 1``; return gamma, c, dual p.

    ``c = c+ - c-`` with both parts nonnegative; HiGHS's marginals of the margin rows,
    normalized, are the dual distribution ``p``.
    """
    n, k = features.shape
    signed = signs[:, None] * features
    a_ub = np.block([[-signed, signed, np.ones((n, 1))], [np.ones((1, 2 * k)), np.zeros((1, 1))]])
    b_ub = np.append(np.zeros(n), 1.0)
    cost = np.append(np.zeros(2 * k), -1.0)
    bounds = [(0.0, None)] * (2 * k) + [(None, None)]
    result = scipy.optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if result.status != 0:
        raise RuntimeError(f"F1 linear program failed: {result.message}")
    p = np.maximum(-result.ineqlin.marginals[:n], 0.0)
    return -float(result.fun), result.x[:k] - result.x[k : 2 * k], p / p.sum()


def _dual_upper(
    x: np.ndarray,
    signs: np.ndarray,
    p: np.ndarray,
    exact: bool | None,
    support: np.ndarray,
    starts: int,
    iterations: int,
    top: int,
    seed: int,
) -> tuple[float, np.ndarray, bool]:
    """``max_theta |g_p(theta)|`` and the best directions of both signs."""
    found, best, is_exact = [], 0.0, True
    for sign in (1.0, -1.0):
        directions, values, is_exact = sphere_maximum(
            x,
            sign * p * signs,
            top=top,
            exact=exact,
            starts=starts,
            iterations=iterations,
            extra_starts=support,
            seed=seed,
        )
        found.append(directions)
        best = max(best, float(values[0]))
    return best, np.concatenate(found), is_exact


def f1_max_margin(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    method: str = "column_generation",
    grid_size: int = 20000,
    tol: float = 1e-4,
    max_rounds: int = 100,
    initial: int = 1000,
    per_round: int = 20,
    exact: bool | None = None,
    oracle_starts: int = 300,
    oracle_iterations: int = 200,
    seed: int = 0,
) -> F1Result:
    """Bound ``gamma_1``, the F1 max-margin of a two-layer ReLU network, from both sides.

    Parameters
    ----------
    x : array-like
        ``(n, d)`` inputs; include the constant coordinate for a bias (see module notes).
    y : array-like
        ``(n,)`` class indices ``0``/``1`` (labels -1/+1).
    method : {"column_generation", "grid"}
        Column generation from ``initial`` random directions plus the normalized inputs
        (any ``d``), or the LP over a fixed ``grid_size`` sphere grid (``d <= 3``; solved
        exactly by pricing the grid columns, ``per_round`` at a time).
    tol : float
        Column generation stops once ``upper <= (1 + tol) lower``.
    max_rounds, per_round : int
        LPs solved at most, directions added per round (and per sign for the oracle).
    exact : bool, optional
        Exact inner maximization (default: ``d <= 3``).
    oracle_starts, oracle_iterations : int
        Multistart ascent settings of the inexact oracle. Before it stops, column
        generation repeats the ascent with ten times the starts; ``upper`` is the value
        of the last dual, which lies above ``lower`` but bounds ``gamma_1`` only if the
        ascent found the maximum.
    seed : int
        Seed of the initial directions and the oracle's starts.

    Returns
    -------
    F1Result

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> result = f1_max_margin(x, np.array([1, 1]), tol=1e-6)
    >>> round(result.lower, 6), round(result.upper, 6), result.certified
    (0.707107, 0.707107, True)
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    x = _as_numpy(x)
    x = x.reshape(len(x), -1)
    signs = 2.0 * _as_numpy(y) - 1.0
    d = x.shape[1]
    if method == "grid":
        pool = sphere_grid(d, grid_size)
        pool_features = np.maximum(pool @ x.T, 0.0)
        # The grid LP is solved exactly by pricing: start from a subsample, add the grid
        # columns whose reduced cost is positive, until none is (same optimum, small LPs).
        dictionary = pool[:: max(1, grid_size // initial)]
    else:
        rng = np.random.default_rng(seed)
        dictionary = np.concatenate([_unit_rows(rng.standard_normal((initial, d))), _unit_rows(x)])
    upper, rounds = np.inf, 0
    while True:
        rounds += 1
        lower, weights, p = _restricted_lp(np.maximum(dictionary @ x.T, 0.0).T, signs)
        if method == "grid":
            priced = np.abs(pool_features @ (p * signs))
            if priced.max() <= lower * (1.0 + 1e-10) or rounds >= max_rounds:
                break
            dictionary = np.concatenate([dictionary, pool[np.argsort(-priced)[:per_round]]])
            continue
        support = dictionary[np.abs(weights) > 0]
        value, found, certified = _dual_upper(
            x, signs, p, exact, support, oracle_starts, oracle_iterations, per_round, seed + rounds
        )
        if not certified and value <= (1.0 + tol) * lower:
            # Before stopping on an ascent's word, ask one with ten times the starts.
            value, found, _ = _dual_upper(
                x,
                signs,
                p,
                exact,
                support,
                10 * oracle_starts,
                oracle_iterations,
                per_round,
                seed + rounds,
            )
        if certified:
            # Every exact value bounds gamma_1, so the smallest is kept.
            if value < upper:
                upper, dual = value, p
        else:
            # An ascent can miss the maximum of an early dual and report a value below
            # gamma_1; only the current dual's value, found from its own support, is kept.
            upper, dual = value, p
        if upper <= (1.0 + tol) * lower or rounds >= max_rounds:
            break
        dictionary = np.concatenate([dictionary, found])
    if method == "grid":
        upper, _, certified = _dual_upper(
            x,
            signs,
            p,
            exact,
            dictionary[np.abs(weights) > 0],
            oracle_starts,
            oracle_iterations,
            1,
            seed,
        )
        dual = p
    used = np.abs(weights) > 0
    return F1Result(
        lower=lower,
        upper=upper,
        certified=certified,
        directions=dictionary[used],
        weights=weights[used],
        dual=dual,
        rounds=rounds,
        n_directions=len(dictionary),
        method=method,
    )
