"""Projected gradient descent, L-inf, on the margin loss, with random restarts (Lyu & Li C.5).

A fixed-epsilon attack: it runs at each epsilon in turn, ascending, on the samples still
standing, so a sample's distance is that of its example at the first epsilon that broke it.
"""

from __future__ import annotations

from collections.abc import Callable

import eagerpy as ep
import foolbox as fb
import torch

from marginlab.measure.attacks.base import Attack, AttackSetup, BatchAttack, verify


class _MarginLinfPGD(fb.attacks.LinfPGD):
    """L-inf PGD ascending the margin loss ``max_{j != y} z_j - z_y`` (Lyu & Li's PGD loss is
    of this C&W type): the cross-entropy gradient is proportional to the loss itself, which
    underflows at the 1e-300 losses of late checkpoints, so PGD on it would not move."""

    def get_loss_fn(self, model: fb.Model, labels: ep.Tensor) -> Callable[[ep.Tensor], ep.Tensor]:
        rows = range(len(labels))

        def loss_fn(inputs: ep.Tensor) -> ep.Tensor:
            logits = model(inputs)
            best_other = (logits - ep.onehot_like(logits, labels, value=ep.inf)).max(axis=-1)
            return (best_other - logits[rows, labels]).sum()

        return loss_fn


def build(setup: AttackSetup) -> BatchAttack:
    options = dict(setup.options)
    restarts = options.pop("restarts")
    pgd = _MarginLinfPGD(**options)
    fmodel = setup.foolbox_model()

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adversarials = x.clone()
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        # Ascending eps, and only the samples still standing: a sample broken at a small
        # eps has its distance, and restarts stop once a sample falls.
        for epsilon in setup.eps:
            for _ in range(restarts):
                todo = (~found).nonzero().squeeze(1)
                if len(todo) == 0:
                    return adversarials
                _, clipped, _ = pgd(fmodel, x[todo], y[todo], epsilons=epsilon)
                ok = verify(setup.model, clipped, y[todo], setup.bounds)
                adversarials[todo[ok]] = clipped[ok]
                found[todo[ok]] = True
        return adversarials

    return run


PGD = Attack(
    "pgd",
    norms=("linf",),
    # 100 steps of 0.1 eps, 10 random restarts.
    options={"steps": 100, "rel_stepsize": 0.1, "restarts": 10},
    build=build,
    fixed_eps=True,
    stops_early=lambda options: (
        "PGD skips the restarts and larger epsilons of a sample once it falls"
    ),
)
