"""Is a KKT point of the max-margin problem a local optimum? A numerical probe.

Gradient flow converges in direction to a KKT point of ``min 1/2 ||theta||^2`` s.t.
``s_nj(theta) >= 1``, which need not be a local optimum (Vardi, Shamir & Srebro 2022;
``chizat-vardi.md`` sections 4-5). The point is rescaled to the boundary (``min s = 1``, as
in :mod:`marginlab.measure.kkt`), and the ball of radius ``r ||theta*||`` around it is
searched for a point of larger normalized margin ``gamma = min s / ||theta||^L``, which is
the same as a feasible point of smaller norm: along ``theta`` the feasible point has norm
``gamma(theta)^{-1/L}``. The search samples random perturbations on several shells and
then runs SLSQP inside the ball (:func:`~marginlab.measure.references.nonconvex.maximize_margin`)
from the point itself and from the best samples.

The verdict is ``"not a local optimum"`` only when the best margin found, re-evaluated
exactly, beats ``gamma(theta*)`` by more than ``tol`` relative; otherwise it is
``"no better point found"``, evidence for (not a proof of) local optimality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from marginlab.measure.references.nonconvex import MarginProblem, maximize_margin

NOT_LOCAL = "not a local optimum"
NO_BETTER = "no better point found"


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`local_probe`.

    Attributes
    ----------
    margin : float
        ``gamma(theta*)``.
    best_margin : float
        The best normalized margin found in the ball.
    improvement : float
        ``best_margin / margin - 1`` (relative).
    norm_ratio : float
        Norm of the best feasible point over ``||theta*||`` at min margin 1:
        ``(margin / best_margin)^{1/L}`` (below 1 means a shorter feasible point).
    radius : float
        Ball radius relative to ``||theta*||``.
    distance : float
        Relative distance of the best point from ``theta*`` (both at norm ``||theta*||``).
    verdict : str
        ``"not a local optimum"`` or ``"no better point found"``.
    theta : numpy.ndarray
        The best point (flat, at norm ``||theta*||``).
    """

    margin: float
    best_margin: float
    improvement: float
    norm_ratio: float
    radius: float
    distance: float
    verdict: str
    theta: np.ndarray

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["theta"] = self.theta.tolist()
        return out


def local_probe(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    order: float | None = None,
    radius: float = 1e-2,
    n_random: int = 2000,
    n_local: int = 5,
    tol: float = 1e-9,
    seed: int = 0,
) -> ProbeResult:
    """Search the ball around a model's (rescaled) parameters for a larger normalized margin.

    Parameters
    ----------
    model : torch.nn.Module
        A homogeneous model at (or near) a KKT point with ``q_min > 0``.
    x, y : torch.Tensor
        Training inputs and class indices.
    order : float, optional
        Homogeneity order; defaults to ``model.homogeneity_order``.
    radius : float
        Ball radius relative to ``||theta*||``.
    n_random : int
        Random perturbations, spread over the shells ``radius * 10^-k``, ``k = 0, 1, 2``.
    n_local : int
        SLSQP searches inside the ball: from ``theta*`` and from the best samples.
    tol : float
        Relative improvement needed for the verdict ``"not a local optimum"``.
    seed : int
        Seed of the perturbations.

    Returns
    -------
    ProbeResult

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[0.5, -1.0]]))  # the SVM: a global optimum
    >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> local_probe(model, x, torch.tensor([1, 0]), order=1, n_random=100).verdict
    'no better point found'
    """
    problem = MarginProblem(model, x, y, order)
    margins = problem.margins(problem.theta0)
    if not margins.min() > 0:
        raise ValueError(
            f"model: q_min = {margins.min():.3g} <= 0; the probe starts from a point that "
            "classifies every training sample correctly (a trained model)"
        )
    center = problem.theta0 / margins.min() ** (1.0 / problem.order)
    norm = float(np.linalg.norm(center))
    margin = problem.normalized_margin(center)
    rng = np.random.default_rng(seed)

    def on_sphere(theta: np.ndarray) -> np.ndarray:
        return theta * (norm / float(np.linalg.norm(theta)))

    directions = rng.standard_normal((n_random, len(center)))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    shells = radius * norm * 10.0 ** -(np.arange(n_random) % 3)
    samples = [on_sphere(center + r * d) for r, d in zip(shells, directions, strict=True)]
    values = [problem.normalized_margin(theta) for theta in samples]
    ranked = np.argsort(values)[::-1][: max(0, n_local - 1)]
    for start in [center, *(samples[i] for i in ranked)]:
        theta = on_sphere(maximize_margin(problem, start, center=center, radius=radius * norm))
        # Only points inside the ball count (SLSQP may end marginally outside it).
        if np.linalg.norm(theta - center) <= radius * norm * (1.0 + 1e-6):
            samples.append(theta)
            values.append(problem.normalized_margin(theta))
    best_index = int(np.argmax(values))
    best, best_margin = samples[best_index], values[best_index]
    if not best_margin > margin:
        best, best_margin = center, margin
    improvement = best_margin / margin - 1.0
    return ProbeResult(
        margin=margin,
        best_margin=best_margin,
        improvement=improvement,
        norm_ratio=(margin / best_margin) ** (1.0 / problem.order),
        radius=radius,
        distance=float(np.linalg.norm(best - center)) / norm,
        verdict=NOT_LOCAL if improvement > tol else NO_BETTER,
        theta=best,
    )
