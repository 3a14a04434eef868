"""Adversarial attacks: verified per-sample distances, an upper bound on the robust radius.

:func:`run_attack` attacks samples with a registered attack (:data:`ATTACKS`: C&W,
DeepFool, FMN, PGD, each in its own module) or with ``best`` of them, and verifies every
example it returns. A new attack is an :class:`Attack` in a file of its own, registered with
:func:`register_attack`. The bound from below is :mod:`marginlab.measure.lipschitz`; attacks
along a run's checkpoints are :func:`marginlab.results.robustness.attack_along_training`.
"""

from marginlab.measure.attacks.base import NORMS, Attack, AttackResult, AttackSetup, BatchAttack
from marginlab.measure.attacks.registry import (
    ATTACKS,
    BEST,
    DEFAULT_ATTACKS,
    attacks_of,
    register_attack,
)
from marginlab.measure.attacks.run import (
    DEFAULT_EPS,
    attack_settings,
    check_attack,
    check_eps,
    closest,
    run_attack,
)

__all__ = [
    "ATTACKS",
    "BEST",
    "DEFAULT_ATTACKS",
    "DEFAULT_EPS",
    "NORMS",
    "Attack",
    "AttackResult",
    "AttackSetup",
    "BatchAttack",
    "attack_settings",
    "attacks_of",
    "check_attack",
    "check_eps",
    "closest",
    "register_attack",
    "run_attack",
]
