"""KKT points of the max-margin problem that are, or are not, optimal (Vardi et al. 2022).

Each construction of ``chizat-vardi.md`` section 5 (our own realizations of the phenomena
of Vardi, Shamir & Srebro, whose own examples could not be read) is built here as data, a
model and its parameters ``theta*`` at min margin 1, with what the theory says of it:

========  =============================================  ==============  ===================
name      network                                        theta* is       better point
========  =============================================  ==============  ===================
V1        depth-2 diagonal linear ``sum u_j v_j x_j``    not local       gamma 1/2
V2        the same, all weights nonzero                  global          none
V3        depth-3 diagonal linear                        not local       gamma 3^{-3/2}
V3r       depth-3 diagonal ReLU                          not local       gamma 3^{-3/2}
V4        depth-2 ReLU, width 2, zero pre-activations    not local       gamma 1/(2 sqrt 2)
V5        depth-2 ReLU, width 2, nonzero pre-activations local           gamma cos(50 deg)/2
V6-L2/L3  fully connected linear, depth 2 and 3          global          none
========  =============================================  ==============  ===================

:func:`verify` measures each claim with marginlab's own tools: the normalized margin
(:mod:`marginlab.measure.margins` convention, ``min s / ||theta||^L`` over all weights), the
best KKT certificate (:func:`marginlab.measure.kkt.kkt_certificates`) and its multipliers,
the margin along the stated improving direction, the stated better point, and the
local-optimality probe (:func:`~marginlab.measure.references.local_probe.local_probe`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from marginlab.measure.kkt import KKTResult, kkt_certificates
from marginlab.measure.margins import normalized_margin
from marginlab.measure.references.local_probe import NO_BETTER, NOT_LOCAL, ProbeResult, local_probe
from marginlab.models import MLP, DeepLinear


class DiagonalNet(nn.Module):
    """``f(x) = sum_j u_{D,j} phi(... phi(u_{2,j} phi(u_{1,j} x_j)))``, order ``D``.

    ``phi`` is the identity (diagonal linear network) or ReLU. The parameters are the
    layers ``u_1, ..., u_D`` in that order.

    Examples
    --------
    >>> net = DiagonalNet(2, depth=2)
    >>> vector_to_parameters(torch.tensor([1.0, 2.0, 3.0, 4.0]).double(), net.parameters())
    >>> net(torch.tensor([[1.0, 1.0]]).double()).item()  # 1*3 + 2*4
    11.0
    """

    def __init__(self, d: int, depth: int, relu: bool = False) -> None:
        super().__init__()
        self.layers = nn.ParameterList(
            nn.Parameter(torch.zeros(d, dtype=torch.float64)) for _ in range(depth)
        )
        self.relu = relu
        self.homogeneity_order = float(depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for index, u in enumerate(self.layers):
            h = h * u
            if self.relu and index < len(self.layers) - 1:
                h = torch.relu(h)
        return h.sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class Construction:
    """A network at a KKT point of the max-margin problem and what the theory says of it.

    Attributes
    ----------
    name : str
        ``V1`` ... ``V6-L3``.
    claim : str
        The statement in words.
    model : torch.nn.Module
        The network with its parameters at ``theta*`` (min margin exactly 1).
    x, y : torch.Tensor
        The data (class indices; class 1 is the label +1).
    margin : float
        ``gamma(theta*)``, exact.
    multipliers : tuple of float
        The KKT multipliers, one per sample.
    optimality : str
        ``"not local"``, ``"local"`` or ``"global"``.
    better : torch.Tensor or None
        Parameters of a point with a larger normalized margin (the global one when known).
    better_margin : float or None
        Its normalized margin, exact.
    direction : torch.Tensor or None
        A direction ``d`` along which ``gamma(theta* + eps d)`` increases.
    gain : callable or None
        ``eps -> gamma(theta* + eps d)``, exact.
    """

    name: str
    claim: str
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    margin: float
    multipliers: tuple[float, ...]
    optimality: str
    better: torch.Tensor | None = None
    better_margin: float | None = None
    direction: torch.Tensor | None = None
    gain: Callable[[float], float] | None = field(default=None, repr=False)

    @property
    def theta(self) -> torch.Tensor:
        """``theta*`` as one flat vector."""
        return parameters_to_vector(self.model.parameters()).detach()

    def model_at(self, theta: torch.Tensor) -> nn.Module:
        """A copy of the model with parameters ``theta``."""
        model = copy.deepcopy(self.model)
        vector_to_parameters(theta.double(), model.parameters())
        return model


def _with(model: nn.Module, theta: list[float]) -> nn.Module:
    model = model.double()
    vector_to_parameters(torch.tensor(theta, dtype=torch.float64), model.parameters())
    return model


def _vec(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _data(points: list[list[float]], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(points, dtype=torch.float64), torch.tensor(labels)


def _v1() -> Construction:
    root2 = math.sqrt(2.0)
    x, y = _data([[1.0, 0.5]], [1])
    return Construction(
        name="V1",
        claim="depth-2 diagonal linear: a KKT point that is not a local optimum",
        model=_with(DiagonalNet(2, 2), [0.0, root2, 0.0, root2]),
        x=x,
        y=y,
        margin=0.25,
        multipliers=(2.0,),
        optimality="not local",
        better=_vec([1.0, 0.0, 1.0, 0.0]),
        better_margin=0.5,
        direction=_vec([1.0, 0.0, 1.0, 0.0]),
        gain=lambda eps: (1.0 + eps**2) / (4.0 + 2.0 * eps**2),
    )


def _v2() -> Construction:
    half = math.sqrt(0.5)
    x, y = _data([[1.0, 1.0]], [1])
    return Construction(
        name="V2",
        claim="depth-2 diagonal linear, all weights nonzero: the KKT point is global",
        model=_with(DiagonalNet(2, 2), [half] * 4),
        x=x,
        y=y,
        margin=0.5,
        multipliers=(1.0,),
        optimality="global",
    )


def _v3(relu: bool) -> Construction:
    a = 2.0 ** (-1.0 / 3.0)
    x, y = _data([[1.0, 1.0]], [1])
    base = 2.0 / 6.0**1.5
    return Construction(
        name="V3r" if relu else "V3",
        claim=(
            f"depth-3 diagonal {'ReLU' if relu else 'linear'}, all weights (and "
            "pre-activations) nonzero: a KKT point that is not a local optimum"
        ),
        model=_with(DiagonalNet(2, 3, relu=relu), [a] * 6),
        x=x,
        y=y,
        margin=base,
        multipliers=(2.0 ** (1.0 / 3.0),),
        optimality="not local",
        better=_vec([1.0, 0.0] * 3),
        better_margin=3.0**-1.5,
        # coordinate 1 of every layer times (1 + eps), coordinate 2 times (1 - eps)
        direction=_vec([a, -a] * 3),
        gain=lambda eps: base * (1.0 + 3.0 * eps**2) / (1.0 + eps**2) ** 1.5,
    )


def _v4() -> Construction:
    # Exact zeros matter: relu'(0) = 0 is the Clarke element of the certificate, and
    # cos(90 deg) in floating point is 6e-17, not 0.
    x, y = _data([[1.0, 0.0], [0.0, 1.0]], [1, 1])
    s = math.sqrt(0.5)
    return Construction(
        name="V4",
        claim="depth-2 ReLU with zero pre-activations: a KKT point that is not a local optimum",
        model=_with(MLP(2, [2], 1), [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
        x=x,
        y=y,
        margin=0.25,
        multipliers=(1.0, 1.0),
        optimality="not local",
        better=_vec([s, s, 0.0, 0.0, 1.0, 0.0]),
        better_margin=1.0 / (2.0 * math.sqrt(2.0)),
        direction=_vec([0.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
        gain=lambda eps: (1.0 + eps) / (4.0 + 2.0 * eps**2),
    )


def _v5() -> Construction:
    angle = math.radians(100.0)
    x, y = _data([[1.0, 0.0], [math.cos(angle), math.sin(angle)]], [1, 1])
    bisector = math.radians(50.0)
    x2 = x[1].tolist()
    return Construction(
        name="V5",
        claim=(
            "depth-2 ReLU with nonzero pre-activations: the KKT point is a local optimum "
            "but not a global one"
        ),
        model=_with(MLP(2, [2], 1), [1.0, 0.0, *x2, 1.0, 1.0]),
        x=x,
        y=y,
        margin=0.25,
        multipliers=(1.0, 1.0),
        optimality="local",
        better=_vec([math.cos(bisector), math.sin(bisector), 0.0, 0.0, 1.0, 0.0]),
        better_margin=math.cos(bisector) / 2.0,
    )


def _v6(depth: int) -> Construction:
    # SVM of x1 = (2, 0), y = +1 and x2 = (0, 1), y = -1: w = (1/2, -1), alpha = (1/4, 1).
    x, y = _data([[2.0, 0.0], [0.0, 1.0]], [1, 0])
    w = torch.tensor([0.5, -1.0], dtype=torch.float64)
    norm = float(w.norm())
    s = norm ** (1.0 / depth)
    e1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    layers = [s * torch.outer(e1, w / norm)]
    layers += [s * torch.outer(e1, e1)] * (depth - 2)
    layers += [s * e1[None, :]]
    model = DeepLinear(2, hidden=[3] * (depth - 1)).double()
    vector_to_parameters(torch.cat([m.reshape(-1) for m in layers]), model.parameters())
    scale = norm ** (-2.0 * (depth - 1) / depth)
    return Construction(
        name=f"V6-L{depth}",
        claim=f"fully connected linear network of depth {depth}: the KKT point is global",
        model=model,
        x=x,
        y=y,
        margin=1.0 / (norm * depth ** (depth / 2.0)),
        multipliers=(0.25 * scale, 1.0 * scale),
        optimality="global",
    )


_BUILDERS: dict[str, Callable[[], Construction]] = {
    "V1": _v1,
    "V2": _v2,
    "V3": lambda: _v3(relu=False),
    "V3r": lambda: _v3(relu=True),
    "V4": _v4,
    "V5": _v5,
    "V6-L2": lambda: _v6(2),
    "V6-L3": lambda: _v6(3),
}
CONSTRUCTIONS: tuple[str, ...] = tuple(_BUILDERS)
"""Names of the built-in constructions."""


def construction(name: str) -> Construction:
    """Build construction ``name`` (one of :data:`CONSTRUCTIONS`).

    Examples
    --------
    >>> c = construction("V4")
    >>> c.optimality, c.margin
    ('not local', 0.25)
    """
    if name not in _BUILDERS:
        raise ValueError(f"name: unknown construction {name!r}; expected one of {CONSTRUCTIONS}")
    return _BUILDERS[name]()


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` measured on one construction.

    Attributes
    ----------
    name : str
    margin : float
        Measured ``gamma(theta*)``.
    kkt : KKTResult
        Certificates at ``tau = 1e-9`` (exactly active constraints).
    multipliers_error : float
        Largest gap between the certificate's and the stated multipliers.
    gains : dict
        ``eps -> (measured, stated)`` margins along the improving direction.
    better_margin : float or None
        Measured margin of the stated better point.
    probe : ProbeResult
        The local-optimality probe from ``theta*``.
    confirmed : bool
        Every measurement agrees with the claim (tolerance ``tol``).
    """

    name: str
    margin: float
    kkt: KKTResult
    multipliers_error: float
    gains: dict[float, tuple[float, float]]
    better_margin: float | None
    probe: ProbeResult
    confirmed: bool


def verify(
    item: Construction | str,
    *,
    tol: float = 1e-9,
    radius: float = 1e-2,
    n_random: int = 2000,
    n_local: int = 5,
    seed: int = 0,
) -> Verification:
    """Check a construction: margin, KKT to ``tol``, multipliers, gains, better point, probe.

    Parameters
    ----------
    item : Construction or str
        A construction or its name.
    tol : float
        Tolerance of the KKT residual (relative), of the margins and multipliers, and the
        probe's improvement threshold.
    radius, n_random, n_local, seed
        Settings of :func:`~marginlab.measure.references.local_probe.local_probe`.

    Returns
    -------
    Verification

    Examples
    --------
    >>> verify("V2", n_random=200).confirmed
    True
    """
    c = construction(item) if isinstance(item, str) else item
    margin = normalized_margin(c.model, c.x, c.y)
    kkt = kkt_certificates(c.model, c.x, c.y, "logistic", taus=[tol])
    cert = kkt.certificates[0]
    found = dict.fromkeys(range(len(c.x)), 0.0)
    for (n, _), lam in zip(cert.constraints, cert.multipliers, strict=True):
        found[n] += lam
    multipliers_error = max(abs(found[n] - lam) for n, lam in enumerate(c.multipliers))
    gains = {}
    if c.direction is not None and c.gain is not None:
        for eps in (1e-1, 1e-2, 1e-3):
            moved = c.model_at(c.theta + eps * c.direction)
            gains[eps] = (normalized_margin(moved, c.x, c.y), c.gain(eps))
    better_margin = None
    if c.better is not None:
        better_margin = normalized_margin(c.model_at(c.better), c.x, c.y)
    probe = local_probe(
        c.model, c.x, c.y, radius=radius, n_random=n_random, n_local=n_local, tol=tol, seed=seed
    )
    close = abs(margin - c.margin) <= tol * c.margin and multipliers_error <= tol * max(
        c.multipliers
    )
    checks = [close, cert.eps_rel <= tol]
    checks += [abs(m - s) <= tol * s and m > margin for m, s in gains.values()]
    if better_margin is not None:
        checks += [abs(better_margin - c.better_margin) <= tol, better_margin > margin]
    checks.append(probe.verdict == (NOT_LOCAL if c.optimality == "not local" else NO_BETTER))
    return Verification(
        name=c.name,
        margin=margin,
        kkt=kkt,
        multipliers_error=multipliers_error,
        gains=gains,
        better_margin=better_margin,
        probe=probe,
        confirmed=all(checks),
    )
