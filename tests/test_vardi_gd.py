"""Vardi et al.'s gradient descent through ``fit``: the two-phase schedule, step by step."""

import math

import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from marginlab.experiments.papers.vardi import PlainThenNormalized, batched_gd, random_inits
from marginlab.measure.references.vardi import construction


def _reference(name: str, theta0: torch.Tensor, plain: int, normalized: int) -> torch.Tensor:
    """The schedule written out directly on the mean logistic loss, in float64."""
    c = construction(name)
    sign = 2.0 * c.y.double() - 1.0
    ends = []
    for start in theta0:
        model = c.model_at(start)
        params = list(model.parameters())
        for k in range(plain + normalized):
            mean_loss = torch.nn.functional.softplus(-sign * model(c.x).reshape(-1)).mean()
            if k < plain:
                grads = torch.autograd.grad(mean_loss, params)
                step = [0.2 * g for g in grads]
            else:
                grads = torch.autograd.grad(torch.log(mean_loss), params)
                length = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
                size = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in params))
                eta = 0.05 / (1.0 + (k - plain) / 100.0)
                # a seed with no gradient (every unit dead) stays where it is
                step = [eta * size / length * g if length else 0.0 * g for g in grads]
            with torch.no_grad():
                theta = parameters_to_vector(params) - parameters_to_vector(step)
                vector_to_parameters(theta, params)
        ends.append(parameters_to_vector(params).detach())
    return torch.stack(ends)


@pytest.mark.parametrize("name", ["V2", "V4", "V5"])
def test_batched_gd_takes_the_two_phase_steps_of_each_seed(name) -> None:
    theta0 = random_inits(name, 4, seed=3)
    ours = batched_gd(construction(name), theta0, plain_steps=15, log_steps=15)
    expected = _reference(name, theta0, 15, 15)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(ours, theta0)


def test_the_normalized_phase_moves_by_its_relative_step() -> None:
    schedule = PlainThenNormalized(plain_steps=0, lr=0.2, eta=0.05, decay=100.0)
    state = schedule.init(-1.0)
    # theta -= exp(factor) * g: a step of eta ||theta|| along g / ||g||
    factor = schedule.log_step_factor(state, -1.0, norm=3.0, gradient_norm=6.0)
    assert math.exp(factor) * 6.0 == pytest.approx(0.05 * 3.0)
    # a run with no gradient stays where it is
    assert schedule.log_step_factor(state, -1.0, norm=3.0, gradient_norm=0.0) == -math.inf
