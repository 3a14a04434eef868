"""What every attack shares: its registry entry, its per-sample result and the checks.

An attack is an :class:`Attack`: a name, the norms it attacks, its options with their
defaults, and ``build(setup) -> batch``, where ``batch(x, y)`` returns candidate
adversarial examples for a batch. :func:`marginlab.measure.attacks.run_attack` verifies
every candidate (finite, inside the box, misclassified) and measures its distance in
float64, so an attack cannot report a distance it did not achieve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from marginlab.measure.lipschitz import NORMS
from marginlab.measure.margins import pairwise_margins

__all__ = ["NORMS", "Attack", "AttackResult", "AttackSetup", "BatchAttack", "verify"]

BatchAttack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``batch(x, y) -> candidates``: one batch's candidate adversarial examples (the input
itself where there is none)."""


@dataclass(frozen=True)
class AttackSetup:
    """What an attack is built with, for one call of :func:`run_attack`.

    Attributes
    ----------
    model : torch.nn.Module
        The classifier in eval mode, returning ``(N, C)`` logits with ``C >= 2`` (a
        single-output binary model is seen as the two logits ``[-f/2, f/2]``).
    norm : str
        ``"l2"`` or ``"linf"``.
    eps : tuple of float
        The epsilons of interest (a fixed-epsilon attack runs at them).
    bounds : (float, float)
        The input box.
    options : dict
        The attack's options, defaults filled in.
    device : torch.device
        Where the model and the inputs are.
    """

    model: nn.Module
    norm: str
    eps: tuple[float, ...]
    bounds: tuple[float, float]
    options: dict[str, Any]
    device: torch.device

    def foolbox_model(self) -> Any:
        """The model as a foolbox 3 ``PyTorchModel`` on the box."""
        import foolbox as fb

        return fb.PyTorchModel(self.model, bounds=self.bounds, device=self.device)


@dataclass(frozen=True)
class Attack:
    """An attack as the registry (:data:`marginlab.measure.attacks.ATTACKS`) holds it.

    Attributes
    ----------
    name : str
        What ``attack=`` and ``marginlab attack --attack`` call it.
    norms : tuple of str
        The norms it attacks.
    options : mapping
        Its options and their defaults (``options=`` overrides any of them).
    build : callable
        ``build(setup: AttackSetup) -> BatchAttack``.
    fixed_eps : bool
        True for an attack that runs at given epsilons (PGD): it knows nothing beyond the
        largest. False for a minimal-norm attack, whose one distance per sample gives the
        robust accuracy at every epsilon.
    stops_early : callable
        ``stops_early(options)``: how the attack, with these options, may stop before its
        last step (in words), or ``""`` when it runs every step. A cost timed with every
        step run is then an upper bound.
    """

    name: str
    norms: tuple[str, ...]
    options: Mapping[str, Any]
    build: Callable[[AttackSetup], BatchAttack]
    fixed_eps: bool = False
    stops_early: Callable[[Mapping[str, Any]], str] = lambda options: ""


@dataclass(frozen=True)
class AttackResult:
    """Per-sample outcome of an attack.

    Attributes
    ----------
    norm, attack : str
        ``"l2"``/``"linf"`` and the attack's name.
    distances : numpy.ndarray
        ``(N,)`` float64 distance to the verified adversarial example: 0 for a sample
        misclassified to begin with, ``inf`` where the attack found none (robust).
    adversarials : torch.Tensor
        ``(N, ...)`` on the CPU: the verified adversarial example, or the input itself
        where there is none.
    misclassified : numpy.ndarray
        ``(N,)`` bool: misclassified before any attack.
    eps_attacked : tuple of float or None
        The epsilons a fixed-epsilon attack (PGD) tried; ``None`` for minimal-norm attacks.
    seconds : float
        Wall time of the attack.
    found_by : tuple of str or None
        ``best`` only: per sample, the attack whose example is kept (``""`` where none
        was needed or found).
    """

    norm: str
    attack: str
    distances: np.ndarray
    adversarials: torch.Tensor
    misclassified: np.ndarray
    eps_attacked: tuple[float, ...] | None
    seconds: float
    found_by: tuple[str, ...] | None = None

    @property
    def success(self) -> np.ndarray:
        """``(N,)`` bool: a verified adversarial example exists (or none was needed)."""
        return np.isfinite(self.distances)

    @property
    def median_distance(self) -> float:
        return float(np.median(self.distances))

    def robust_accuracy(self, eps: float | Sequence[float]) -> np.ndarray:
        """Fraction of samples whose attack distance exceeds each ``eps``.

        An upper bound on the true robust accuracy (the attack may miss closer examples).
        A fixed-epsilon attack knows nothing beyond the largest epsilon it tried.

        Examples
        --------
        >>> r = AttackResult("l2", "cw", np.array([0.0, 0.5, np.inf]), torch.zeros(3, 2),
        ...                  np.array([True, False, False]), None, 0.0)
        >>> r.robust_accuracy([0.0, 0.4, 1.0]).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
        """
        eps_array = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        if self.eps_attacked is not None and eps_array.max() > max(self.eps_attacked) * (1 + 1e-12):
            raise ValueError(
                f"eps: {self.attack} ran at eps <= {max(self.eps_attacked):g} only; "
                f"ask for robust accuracy up to that, or attack at larger eps"
            )
        return (self.distances[None, :] > eps_array[:, None]).mean(axis=1)


class TwoLogits(nn.Module):
    """A single-output binary model ``f`` as the two logits ``[-f/2, f/2]``: class 1 wins
    iff ``f > 0`` and the logit gap is ``f``, the binary margin of ``pairwise_margins``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.model(x) / 2
        return torch.cat([-half, half], dim=1)


def is_adversarial(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which ``x_adv`` the model misclassifies (margin ``<= 0``)."""
    with torch.no_grad():
        return pairwise_margins(model(x_adv), y).min(dim=1).values <= 0


def verify(
    model: nn.Module,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """Which ``x_adv`` are finite, inside the box and misclassified."""
    flat = x_adv.flatten(1)
    inside = torch.isfinite(flat).all(1) & (flat >= bounds[0]).all(1) & (flat <= bounds[1]).all(1)
    return inside & is_adversarial(model, x_adv, y)


def distances(x: torch.Tensor, x_adv: torch.Tensor, norm: str) -> torch.Tensor:
    """``||x_adv - x||`` per sample in float64."""
    order = 2 if norm == "l2" else math.inf
    return (x_adv - x).double().flatten(1).norm(p=order, dim=1)
