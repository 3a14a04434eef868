"""Adding an attack takes one file and a registry line: this file is that file.

The attack below searches random directions at growing radii. It is registered with one
line (``register_attack(RANDOM)``), after which ``run_attack``, ``best``, the along-training
driver and ``marginlab attack --attack random`` all use it.
"""

import json

import numpy as np
import pytest
import torch

from marginlab import train
from marginlab.cli import main
from marginlab.measure.attacks import ATTACKS, Attack, AttackSetup, register_attack, run_attack
from marginlab.measure.attacks.base import is_adversarial
from marginlab.results.robustness import attack_along_training


def random_directions(setup: AttackSetup):
    """Per sample, the first of ``directions`` random unit directions, tried at ``radii``
    growing radii up to ``max_radius``, whose step is misclassified."""
    options = setup.options
    generator = torch.Generator().manual_seed(0)

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (options["directions"], *x.shape[1:])
        directions = torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device)
        directions /= directions.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1))
        best, found = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for radius in torch.linspace(0, options["max_radius"], options["radii"] + 1)[1:]:
            for direction in directions:
                candidate = (x + radius * direction).clamp(*setup.bounds)
                hit = is_adversarial(setup.model, candidate, y) & ~found
                best[hit], found = candidate[hit], found | hit
        return best

    return run


RANDOM = Attack(
    "random",
    norms=("l2",),
    options={"directions": 32, "radii": 40, "max_radius": 2.0},
    build=random_directions,
)


@pytest.fixture
def registered():
    register_attack(RANDOM)
    yield RANDOM
    del ATTACKS["random"]


def linear_problem():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, bias=False).double()
    x = torch.rand(12, 4, dtype=torch.float64) * 0.5 + 0.25
    with torch.no_grad():
        y = (model(x)[:, 0] > 0).long()
    return model, x, y


def test_a_registered_attack_runs_verified_and_never_beats_the_exact_radius(registered):
    model, x, y = linear_problem()
    result = run_attack(model, x, y, attack="random", progress=False)
    assert result.attack == "random" and result.eps_attacked is None
    with torch.no_grad():
        # a linear model's L2 radius, box aside: |f(x)| / ||w||; the box only enlarges it
        exact = (model(x)[:, 0].abs() / model.weight.norm()).numpy()
    found = np.isfinite(result.distances)
    assert found.sum() >= len(x) // 2
    assert (result.distances[found] >= exact[found] * (1 - 1e-9)).all()
    best = run_attack(model, x, y, attack="best", options={"cw.steps": 200}, progress=False)
    assert "random" in best.found_by or (best.distances <= result.distances).all()
    with pytest.raises(ValueError, match="does not attack the linf norm"):
        run_attack(model, x, y, norm="linf", attack="random")


def test_the_registry_refuses_a_clash_and_unknown_norms(registered):
    with pytest.raises(ValueError, match="registered already"):
        register_attack(Attack("random", ("l2",), {}, build=random_directions))
    with pytest.raises(ValueError, match="attack.norms"):
        register_attack(Attack("other", ("l1",), {}, build=random_directions))
    with pytest.raises(ValueError, match="cannot name an attack"):
        register_attack(Attack("best", ("l2",), {}, build=random_directions))


def test_a_registered_attack_serves_the_driver_and_the_command_line(registered, tmp_path, capsys):
    config = {
        "name": "tiny",
        "data": {"name": "digits", "classes": [0, 1], "n_train": 60},
        "model": {"kind": "linear"},
        "train": {"schedule": "normalized", "max_epochs": 30},
    }
    path = train(config, tmp_path / "run", progress=False)
    report = attack_along_training(path, ["last"], n=6, attack="random", progress=False)
    assert report.attack == "random" and len(report.checkpoints[0].distances) == 6
    argv = ["attack", str(path), "--checkpoints", "last", "--n", "6", "--attack", "random"]
    assert main([*argv, "--option", "directions=8"]) == 0
    written = json.loads((path / "robustness-l2-random-train.json").read_text())
    assert written["options"]["directions"] == 8
    capsys.readouterr()
