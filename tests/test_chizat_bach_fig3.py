"""Chizat & Bach's Fig. 3: the tangent kernel, the symmetric start, the distances, the step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacrev

from marginlab.data import load_dataset
from marginlab.experiments.papers.chizat_bach_fig3 import (
    PAPER_TIMES,
    Fig3,
    direction_distance,
    kernel_first,
    lazy_to_rich,
    plane_grid,
    separable_labellings,
    snapshot_figure,
    symmetric_start,
)
from marginlab.experiments.papers.chizat_bach_net import MeanFieldNet
from marginlab.measure.references.rkhs import empirical_kernel
from marginlab.measure.references.tangent import tangent_kernel
from marginlab.training.fit import fit
from marginlab.training.schedules import Normalized


def _network(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x @ a.T) @ b / len(b)


def test_tangent_kernel_is_the_gram_matrix_of_the_parameter_gradients():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(7, 3, generator=g, dtype=torch.float64)
    b = torch.randn(7, generator=g, dtype=torch.float64)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    ja, jb = jacrev(_network, argnums=(0, 1))(a, b, x)  # (5, 7, 3) and (5, 7)
    jacobian = torch.cat([ja.reshape(5, -1), jb], dim=1)
    # The mean-field flow moves each neuron m times its gradient: K = m J J^T.
    expected = len(b) * (jacobian @ jacobian.T)
    assert np.allclose(tangent_kernel(a, b, x, x), expected.numpy(), rtol=1e-12, atol=1e-14)
    # With b = 0 only the output layer's features remain: the output-layer kernel.
    zero = torch.zeros_like(b)
    assert np.allclose(tangent_kernel(a, zero, x, x[:2]), empirical_kernel(a, x, x[:2]))


@pytest.mark.parametrize(
    ("a", "b", "x", "field"),
    [
        (np.ones((4, 3)), np.ones(5), np.ones((2, 3)), "second_layer"),
        (np.ones((4, 3)), np.ones(4), np.ones((2, 2)), "x1"),
    ],
)
def test_tangent_kernel_names_the_input_of_the_wrong_shape(a, b, x, field):
    with pytest.raises(ValueError, match=field):
        tangent_kernel(a, b, x, x)


def test_symmetric_start_is_zero_everywhere_and_needs_pairs():
    a, b = symmetric_start(3, 10, 40.0, seed=1)
    x = torch.as_tensor(plane_grid(5))
    assert torch.allclose(_network(a, b, x), torch.zeros(len(x), dtype=torch.float64), atol=1e-9)
    assert float(a.std()) == pytest.approx(40.0, rel=0.35)
    with pytest.raises(ValueError, match="m: expected an even number"):
        symmetric_start(3, 7, 40.0, seed=1)


def test_direction_distance_ignores_scale_and_measures_the_angle():
    rng = np.random.default_rng(0)
    f, g = rng.standard_normal(400), rng.standard_normal(400)
    g -= f * (f @ g) / (f @ f)  # orthogonal to f
    assert direction_distance(f, 1e300 * f) == pytest.approx(0.0, abs=1e-12)
    assert direction_distance(f, g) == pytest.approx(np.sqrt(2.0), rel=1e-12)
    assert direction_distance(f, -3 * f) == pytest.approx(2.0, rel=1e-12)


def test_first_step_of_fit_moves_f_along_the_tangent_kernel():
    """The step ``Normalized(eta m)`` on the exponential loss, from f = 0 (uniform soft-min
    weights), moves f by ``eta sum_i y_i K(x_i, .) / n`` to first order in ``eta``: the
    trainer and the kernel agree on the time scale."""
    data = load_dataset("clusters", n=12, d=3, k=2, test_n=0, distribution=0)
    x, y = data.x_train.double(), data.y_train
    a, b = symmetric_start(3, 20, 40.0, seed=0)
    net = MeanFieldNet(a.clone(), b.clone(), "both")
    eta = 1e-6
    fit(
        net,
        x,
        y,
        loss="exponential",
        schedule=Normalized(eta * 20),
        max_epochs=1,
        log_every=1,
        progress=False,
    )
    grid = plane_grid(7)
    with torch.no_grad():
        moved = net(torch.as_tensor(grid))[:, 0].numpy()
    signs = 2.0 * y.numpy() - 1.0
    predicted = eta * tangent_kernel(a, b, grid, x) @ signs / len(signs)
    assert np.allclose(moved, predicted, rtol=1e-4, atol=1e-6 * np.abs(predicted).max())


def test_snapshots_hold_the_paper_times_scaled_to_the_last_step():
    setting = Fig3(n=8, m=4, steps=3000, eta=1e-3, replicas=2)
    assert [setting.paper_time(t) for t in PAPER_TIMES] == [1, 5, 50, 300, 600, 3000]
    assert set(setting.paper_time(t) for t in PAPER_TIMES) <= set(setting.times)
    assert setting.times == sorted(setting.times) and setting.times[-1] == 3000


def test_separable_labellings_give_two_labels_per_side_of_a_line():
    for distribution in separable_labellings(3):
        labels = load_dataset("clusters", n=1, d=3, k=2, test_n=0, distribution=distribution).info[
            "cluster_labels"
        ]
        # clusters 0, 1, 2, 3 sit at the corners (-,-), (+,-), (-,+), (+,+): a line
        # separates the classes iff the two corners of a diagonal differ.
        assert labels[0] != labels[3] and labels[1] != labels[2]
        assert sorted(labels) == [-1, -1, 1, 1]


def test_a_short_run_gives_the_figure_and_judgeable_distances():
    setting = Fig3(n=8, m=4, steps=60, eta=1e-3, replicas=2, grid=9)
    replicas = [lazy_to_rich(setting, r, d) for r, d in enumerate(separable_labellings(2))]
    found = {"times": setting.times, "replicas": replicas}
    assert all(len(r["to_kernel"]) == len(setting.times) for r in replicas)
    # every paper time is drawn, each as a unit-RMS function on the grid
    shown = replicas[0]["shown"]
    assert sorted(map(int, shown)) == sorted({setting.paper_time(t) for t in PAPER_TIMES})
    assert all(np.mean(np.square(v)) == pytest.approx(1.0, abs=1e-3) for v in shown.values())
    fig = snapshot_figure(found, setting)
    assert len(fig.axes) == 10
    judged = kernel_first(
        times=found["times"],
        to_kernel=[r["to_kernel"] for r in replicas],
        to_f1=[r["to_f1"] for r in replicas],
        lazy_at=setting.paper_time(5e3),
    )
    assert "at step 1:" in judged.ours
