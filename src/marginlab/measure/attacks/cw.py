"""Carlini & Wagner's L2 attack (foolbox 3), with Lyu & Li's settings (C.5)."""

from __future__ import annotations

import foolbox as fb

from marginlab.measure.attacks.base import Attack, AttackSetup, BatchAttack


def build(setup: AttackSetup) -> BatchAttack:
    attack = fb.attacks.L2CarliniWagnerAttack(**setup.options)
    fmodel = setup.foolbox_model()
    return lambda x, y: attack(fmodel, x, y, epsilons=None)[0]


CW = Attack(
    "cw",
    norms=("l2",),
    # 9 binary-search steps, <= 10000 Adam steps of lr 0.01 with an abort-early check every
    # tenth of them, initial const 1e-3, confidence 0.
    options={
        "binary_search_steps": 9,
        "steps": 10000,
        "stepsize": 0.01,
        "initial_const": 1e-3,
        "abort_early": True,
    },
    build=build,
    stops_early=lambda options: (
        "C&W ends a binary-search step once its loss stops falling (abort_early)"
        if options["abort_early"]
        else ""
    ),
)
