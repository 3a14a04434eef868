"""The nonconvex max-margin problem of a small network, solved directly from many starts.

For an ``L``-homogeneous network the max-margin problem ``min 1/2 ||theta||^2`` s.t.
``s_nj(theta) >= 1`` is equivalent to maximizing the normalized margin
``gamma(theta) = min s_nj(theta) / ||theta||^L`` (:mod:`marginlab.measure.margins`; ``theta``
the trainable parameters). On the sphere ``||theta|| = R`` it is the smooth program

    max t  s.t.  s_nj(theta) >= t,  ||theta||^2 = R^2,

solved here by SLSQP with exact constraint Jacobians (``torch.func.jacrev``), whose starting
points are always feasible (``t = min s``). Every reported margin is re-evaluated from the
returned ``theta``, so solver tolerances never inflate it. Gradient descent only reaches a
KKT point of the problem; comparing its normalized margin with the best one found here
measures how far from the global max-margin it stopped (a lower bound on the gap, since
the search is heuristic).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch
from torch import nn
from torch.func import functional_call, jacrev

from marginlab.measure.margins import homogeneity_order, pairwise_margins
from marginlab.progress import Bar

# SLSQP forms dense (constraints x parameters) matrices and factors them every iteration.
MAX_SLSQP_ENTRIES = 2_000_000


class MarginProblem:
    """The margins of a model as functions of its flattened trainable parameters (float64).

    Parameters
    ----------
    model : torch.nn.Module
        A homogeneous model; it is copied, never modified.
    x, y : torch.Tensor
        Training inputs and class indices.
    order : float, optional
        Homogeneity order; defaults to ``model.homogeneity_order``.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> problem = MarginProblem(model, torch.eye(2).double(), torch.tensor([1, 1]), order=1)
    >>> problem.normalized_margin(np.array([3.0, 4.0]))
    0.6
    """

    def __init__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, order: float | None = None
    ) -> None:
        resolved = homogeneity_order(model, order)
        if resolved is None or resolved <= 0:
            raise ValueError(
                "order: the model declares no positive homogeneity order; pass order=L"
            )
        self.order = resolved
        self.model = copy.deepcopy(model).double()
        device = next(self.model.parameters()).device
        self.x, self.y = x.to(device=device, dtype=torch.float64), y.to(device)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).cpu().numpy()
        self._jacobian = jacrev(self._margins)

    def _unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = math.prod(shape)
            out[name] = theta[start : start + size].view(shape)
            start += size
        return out

    def _margins(self, theta: torch.Tensor) -> torch.Tensor:
        outputs = functional_call(self.model, self._unflatten(theta), (self.x,))
        return pairwise_margins(outputs, self.y).reshape(-1)

    def _tensor(self, theta: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(theta, dtype=torch.float64, device=self.x.device)

    def margins(self, theta: np.ndarray) -> np.ndarray:
        """All constraint margins ``s_nj`` at ``theta``, flattened."""
        with torch.no_grad():
            return self._margins(self._tensor(theta)).cpu().numpy()

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d s_nj / d theta``, shape ``(n_constraints, n_params)``."""
        return self._jacobian(self._tensor(theta)).detach().cpu().numpy()

    def normalized_margin(self, theta: np.ndarray) -> float:
        """``min s_nj(theta) / ||theta||^L``."""
        return float(self.margins(theta).min()) / float(np.linalg.norm(theta)) ** self.order

    def model_at(self, theta: np.ndarray) -> nn.Module:
        """A copy of the model with its trainable parameters set to ``theta``."""
        model = copy.deepcopy(self.model)
        values = self._unflatten(self._tensor(theta))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in values:
                    param.copy_(values[name])
        return model


def maximize_margin(
    problem: MarginProblem,
    start: np.ndarray,
    *,
    center: np.ndarray | None = None,
    radius: float | None = None,
    max_iter: int = 300,
) -> np.ndarray:
    """Locally maximize the normalized margin from ``start`` (SLSQP on the sphere).

    Parameters
    ----------
    problem : MarginProblem
    start : numpy.ndarray
        Starting parameters; the sphere radius is ``||start||``.
    center, radius : numpy.ndarray, float, optional
        Also require ``||theta - center|| <= radius`` (the local-optimality probe).
    max_iter : int
        SLSQP iterations.

    Returns
    -------
    numpy.ndarray
        The parameters reached (the start itself if the solver made no progress).

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> problem = MarginProblem(model, torch.eye(2).double(), torch.tensor([1, 1]), order=1)
    >>> theta = maximize_margin(problem, np.array([1.0, 0.2]))
    >>> round(problem.normalized_margin(theta), 6)
    0.707107
    """
    n_constraints = len(problem.margins(start))
    if n_constraints * (len(start) + 1) > MAX_SLSQP_ENTRIES:
        raise ValueError(
            f"model: {n_constraints} constraints x {len(start)} parameters is too large for "
            "SLSQP; use a smaller network or a subset of the data"
        )
    radius_sq = float(start @ start)

    constraints = [
        {
            "type": "ineq",
            "fun": lambda z: problem.margins(z[:-1]) - z[-1],
            "jac": lambda z: np.hstack([problem.jacobian(z[:-1]), -np.ones((n_constraints, 1))]),
        },
        {
            "type": "eq",
            "fun": lambda z: np.array([z[:-1] @ z[:-1] - radius_sq]),
            "jac": lambda z: np.append(2.0 * z[:-1], 0.0)[None, :],
        },
    ]
    if center is not None and radius is not None:
        constraints.append(
            {
                "type": "ineq",
                "fun": lambda z: np.array([radius**2 - np.sum((z[:-1] - center) ** 2)]),
                "jac": lambda z: np.append(-2.0 * (z[:-1] - center), 0.0)[None, :],
            }
        )
    objective_grad = np.zeros(len(start) + 1)
    objective_grad[-1] = -1.0
    z0 = np.append(start, problem.margins(start).min())
    result = scipy.optimize.minimize(
        lambda z: -z[-1],
        z0,
        jac=lambda z: objective_grad,
        constraints=constraints,
        method="SLSQP",
        options={"maxiter": max_iter, "ftol": 1e-14},
    )
    theta = result.x[:-1]
    if not np.all(np.isfinite(theta)) or float(np.linalg.norm(theta)) == 0.0:
        return start
    return theta


@dataclass(frozen=True)
class NonconvexResult:
    """Best normalized margins found by direct maximization.

    Attributes
    ----------
    margin : float
        The best ``q_min / ||theta||^L`` over all starts.
    theta : numpy.ndarray
        Its parameters (flat, in the order of ``model.parameters()``).
    trained_margin : float
        The normalized margin of the model as given.
    polished_margin : float or None
        The local maximum reached from the model's own parameters (``include_model``).
    margins : list of float
        The margin reached from each random start.
    """

    margin: float
    theta: np.ndarray
    trained_margin: float
    polished_margin: float | None
    margins: list[float]

    def to_dict(self) -> dict:
        return {
            "margin": self.margin,
            "theta": self.theta.tolist(),
            "trained_margin": self.trained_margin,
            "polished_margin": self.polished_margin,
            "margins": self.margins,
        }


def nonconvex_max_margin(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    order: float | None = None,
    n_starts: int = 20,
    include_model: bool = True,
    max_iter: int = 300,
    seed: int = 0,
    progress: bool = False,
) -> NonconvexResult:
    """Search for the max normalized margin of ``model``'s architecture on ``(x, y)``.

    Parameters
    ----------
    model : torch.nn.Module
        A small homogeneous network (its trainable parameters are searched).
    x, y : torch.Tensor
        Training inputs and class indices.
    order : float, optional
        Homogeneity order; defaults to ``model.homogeneity_order``.
    n_starts : int
        Random starts (i.i.d. Gaussian parameters).
    include_model : bool
        Also polish the model's own parameters (what gradient descent reached).
    max_iter : int
        SLSQP iterations per start.
    seed : int
        Seed of the random starts.
    progress : bool
        Show a bar over the starts with the remaining time.

    Returns
    -------
    NonconvexResult

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> result = nonconvex_max_margin(model, x, torch.tensor([1, 0]), order=1, n_starts=3)
    >>> round(result.margin, 6)  # the SVM margin 1 / ||(1/2, -1)||
    0.894427
    """
    problem = MarginProblem(model, x, y, order)
    rng = np.random.default_rng(seed)
    reached = []
    with Bar("nonconvex reference", n_starts + include_model, enabled=progress) as bar:
        for _ in range(n_starts):
            start = maximize_margin(
                problem, rng.standard_normal(len(problem.theta0)), max_iter=max_iter
            )
            reached.append((problem.normalized_margin(start), start))
            bar.advance(1, "starts")
        trained = problem.normalized_margin(problem.theta0)
        polished = None
        if include_model:
            theta = maximize_margin(problem, problem.theta0, max_iter=max_iter)
            polished = problem.normalized_margin(theta)
            reached.append((polished, theta))
            bar.advance(1, "the trained weights")
    best_margin, best_theta = max(reached, key=lambda item: item[0])
    return NonconvexResult(
        margin=best_margin,
        theta=best_theta,
        trained_margin=trained,
        polished_margin=polished,
        margins=[m for m, _ in reached[:n_starts]],
    )
