"""Fast minimum-norm attacks, L2 and L-inf (foolbox 3), made to cross the boundary."""

from __future__ import annotations

from typing import Any

import eagerpy as ep
import foolbox as fb
from foolbox.devutils import atleast_kd, flatten

from marginlab.measure.attacks.base import Attack, AttackSetup, BatchAttack


class _Overshoot:
    """FMN whose epsilon-ball is enlarged by ``1 + overshoot``.

    Before it finds an adversarial example, FMN sets the ball's radius to the linear
    estimate ``||delta|| + |margin| / ||grad||_*``, which is exact on a piecewise-linear net:
    the iterate then converges onto the decision boundary from the inside and, in float64,
    often never crosses it (58% of samples were never broken on a digits MLP). The slack lets
    it cross; the radius then shrinks back onto the boundary as usual.
    """

    def __init__(self, *, overshoot: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.overshoot = overshoot


class _L2FMN(_Overshoot, fb.attacks.L2FMNAttack):
    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        # foolbox 3.3.4 (and its master) scales by `norms / norms`, i.e. never projects.
        norms = ep.maximum(flatten(x - x0).norms.l2(axis=-1), 1e-12)
        factor = ep.minimum(1, epsilon * (1 + self.overshoot) / norms)
        return x0 + (x - x0) * atleast_kd(factor, x.ndim)


class _LinfFMN(_Overshoot, fb.attacks.LInfFMNAttack):
    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        return super().project(x, x0, epsilon * (1 + self.overshoot))


def build(setup: AttackSetup) -> BatchAttack:
    attack = (_L2FMN if setup.norm == "l2" else _LinfFMN)(**setup.options)
    fmodel = setup.foolbox_model()
    return lambda x, y: attack(fmodel, x, y, epsilons=None)[0]


FMN = Attack(
    "fmn",
    norms=("l2", "linf"),
    options={"steps": 300, "max_stepsize": 1.0, "gamma": 0.05, "overshoot": 0.01},
    build=build,
)
