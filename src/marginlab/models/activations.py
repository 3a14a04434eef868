"""Elementwise activations that know their positive-homogeneity degree.

``phi`` has degree ``k`` when ``phi(c z) = c^k phi(z)`` for every ``c > 0``; a network's order
follows from these degrees (see :mod:`marginlab.models.base`). The non-homogeneous ones here
(softplus, GELU, SiLU, leaky softplus) all grow like a (leaky) ReLU, so their homogenization
``lim_r phi(r z) / r`` has degree 1 (Cai et al. 2024; ``cai-related.md`` section 3 table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _relu_k(z: torch.Tensor, k: float) -> torch.Tensor:
    return torch.relu(z) ** k


def _leaky_softplus(z: torch.Tensor, c: float) -> torch.Tensor:
    return c * z + (1.0 - c) * F.softplus(z)


def _check_k(params: Mapping[str, Any]) -> None:
    k = params["k"]
    # k < 1 would make phi' blow up at 0, so gradients at dead-zone boundaries are infinite.
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 1 <= k < float("inf"):
        raise ValueError(f"relu_k: k must be a finite number >= 1, got {k!r}")


def _check_c(params: Mapping[str, Any]) -> None:
    c = params["c"]
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 1:
        raise ValueError(f"leaky_softplus: c must be a number in [0, 1], got {c!r}")


def _check_slope(params: Mapping[str, Any]) -> None:
    slope = params["negative_slope"]
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
        raise ValueError(f"leaky_relu: negative_slope must be a number, got {slope!r}")


@dataclass(frozen=True)
class ActivationKind:
    """One entry of :data:`ACTIVATIONS`.

    Attributes
    ----------
    formula : str
        ``phi(z)`` in words, for error messages and ``describe()``.
    fn : callable
        ``fn(z, **params)``.
    degree : callable
        ``degree(params)``: the homogeneity degree, or ``None`` when ``phi`` is not
        positively homogeneous.
    defaults : mapping
        Keyword parameters and their defaults.
    """

    formula: str
    fn: Callable[..., torch.Tensor]
    degree: Callable[[Mapping[str, Any]], float | None]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[Mapping[str, Any]], None] | None = None


def _one(params: Mapping[str, Any]) -> float:
    return 1.0


def _none(params: Mapping[str, Any]) -> None:
    return None


ACTIVATIONS: Mapping[str, ActivationKind] = MappingProxyType(
    {
        "relu": ActivationKind("max(z, 0)", lambda z: torch.relu(z), _one),
        "leaky_relu": ActivationKind(
            "max(z, negative_slope*z)",
            lambda z, negative_slope: F.leaky_relu(z, negative_slope),
            _one,
            {"negative_slope": 0.01},
            _check_slope,
        ),
        "identity": ActivationKind("z", lambda z: z, _one),
        "relu_k": ActivationKind(
            "max(z, 0)^k", _relu_k, lambda params: float(params["k"]), {"k": 3}, _check_k
        ),
        "softplus": ActivationKind("log(1 + e^z)", lambda z: F.softplus(z), _none),
        "gelu": ActivationKind("z Phi(z)", lambda z: F.gelu(z), _none),
        "silu": ActivationKind("z sigmoid(z)", lambda z: F.silu(z), _none),
        "leaky_softplus": ActivationKind(
            "c z + (1 - c) softplus(z)", _leaky_softplus, _none, {"c": 0.5}, _check_c
        ),
    }
)
"""Activation name -> :class:`ActivationKind` (formula, function, degree, parameters)."""

ACTIVATION_PARAMETERS: frozenset[str] = frozenset(
    name for kind in ACTIVATIONS.values() for name in kind.defaults
)
"""Every keyword any activation accepts (``k``, ``negative_slope``, ``c``)."""


class Activation(nn.Module):
    """An elementwise activation with its homogeneity degree; build it with :func:`make_activation`.

    Attributes
    ----------
    name : str
        Registry name.
    params : dict
        The keyword parameters in use, defaults filled in.
    degree : float or None
        Homogeneity degree; ``None`` if ``phi`` is not positively homogeneous.
    scale_degree : float
        Degree of the homogenization (``degree`` when homogeneous, else 1); it sets the
        layer-group degrees that normalize per-layer norms of a non-homogeneous network.
    """

    def __init__(self, name: str, params: Mapping[str, Any]) -> None:
        super().__init__()
        self.name = name
        self.params = dict(params)
        self.degree = ACTIVATIONS[name].degree(self.params)
        self.scale_degree = 1.0 if self.degree is None else self.degree

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Looked up, not stored: a module holding a lambda could not be pickled.
        return ACTIVATIONS[self.name].fn(z, **self.params)

    @property
    def label(self) -> str:
        """Name and parameters, e.g. ``relu_k(k=2)``."""
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params.items())})"

    def extra_repr(self) -> str:
        return self.label


def make_activation(name: str, **kw: Any) -> Activation:
    """Build the activation ``name`` with keyword parameters ``kw``.

    ``leaky_softplus`` is ``phi(z) = c z + (1 - c) softplus(z)``, the leaky variant
    ``phi_c = c z + (1 - c) phi_0`` of Cai et al. (2024), Example 3.1 (``cai-related.md``
    section 3); their experiments use ``c = 0.5``, the default here. It is smooth, has
    ``phi' in [c, 1]`` and Euler defect ``|phi(z) - z phi'(z)| <= (1 - c) log 2``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`: ``relu``, ``leaky_relu`` (``negative_slope=0.01``),
        ``identity``, ``relu_k`` (``k=3``, degree ``k``), ``softplus``, ``gelu``, ``silu``,
        ``leaky_softplus`` (``c=0.5``).
    **kw
        Parameters of that activation; any other keyword is refused.

    Returns
    -------
    Activation
        The module, with ``degree`` set.

    Raises
    ------
    ValueError
        Unknown name, unknown keyword, or a parameter out of range.

    Examples
    --------
    >>> act = make_activation("relu_k", k=2)
    >>> act.degree, act(torch.tensor([-1.0, 3.0])).tolist()
    (2.0, [0.0, 9.0])
    """
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; got {name!r}"
        )
    kind = ACTIVATIONS[name]
    unknown = sorted(set(kw) - set(kind.defaults))
    if unknown:
        allowed = ", ".join(kind.defaults) or "none"
        raise ValueError(
            f"activation {name!r} got unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    params = {**kind.defaults, **kw}
    if kind.check is not None:
        kind.check(params)
    return Activation(name, params)


def activation_degree(name: str, **kw: Any) -> float | None:
    """Return the homogeneity degree of ``make_activation(name, **kw)`` (``None`` if none).

    Examples
    --------
    >>> activation_degree("relu_k", k=3), activation_degree("gelu")
    (3.0, None)
    """
    return make_activation(name, **kw).degree
