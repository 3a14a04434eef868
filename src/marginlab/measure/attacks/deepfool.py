"""DeepFool, L2 (foolbox 3): the nearest linearised boundary, step by step."""

from __future__ import annotations

import foolbox as fb

from marginlab.measure.attacks.base import Attack, AttackSetup, BatchAttack


def build(setup: AttackSetup) -> BatchAttack:
    attack = fb.attacks.L2DeepFoolAttack(**setup.options)
    fmodel = setup.foolbox_model()
    return lambda x, y: attack(fmodel, x, y, epsilons=None)[0]


DEEPFOOL = Attack(
    "deepfool",
    norms=("l2",),
    options={"steps": 50, "candidates": 10, "overshoot": 0.02},
    build=build,
)
