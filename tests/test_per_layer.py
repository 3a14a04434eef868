"""The per-layer probe against closed forms and against a direct search of each layer."""

import math

import numpy as np
import pytest
import torch

from marginlab.measure.references.nonconvex import nonconvex_max_margin
from marginlab.measure.references.per_layer import (
    LINEAR,
    RELU_CONES,
    UNDECIDED,
    layer_method,
    layer_names,
    only_layer,
    per_layer_optimality,
)
from marginlab.measure.references.svm import linear_svm
from marginlab.measure.references.vardi import construction
from marginlab.models import MLP, DeepLinear

V5_GLOBAL = 1 / (2 * math.cos(math.radians(50)) ** 2)  # both neurons on the bisector


def by_layer(model, x, y, **kw):
    return {r.layer: r for r in per_layer_optimality(model, x, y, n_random=60, **kw)}


def test_v5_first_layer_is_local_not_global_with_the_closed_form_values():
    v5 = construction("V5")
    layers = by_layer(v5.model, v5.x, v5.y)
    first, second = layers["fc1"], layers["fc2"]
    assert first.method == RELU_CONES and second.method == LINEAR
    assert first.norm_sq == pytest.approx(2.0, rel=1e-12)
    # nonzero pre-activations: one cone contains the layer, and its optimum is the layer
    assert first.local_value == pytest.approx(2.0, rel=1e-12)
    assert first.global_value == pytest.approx(V5_GLOBAL, rel=1e-12)
    assert first.patterns == 1 + 16
    assert first.is_local() and not first.is_global()
    assert second.is_global() and second.global_value == pytest.approx(2.0, rel=1e-12)
    assert first.probe_gain <= 1e-12 and second.probe_gain <= 1e-12


def test_cone_enumeration_agrees_with_a_direct_search_of_the_layer():
    # the best q_min / ||W_1|| with v fixed, found by SLSQP from many starts, is
    # 1 / sqrt(global value)
    v5 = construction("V5")
    found = nonconvex_max_margin(only_layer(v5.model, "fc1"), v5.x, v5.y, order=1.0, n_starts=12)
    assert found.margin == pytest.approx(1 / math.sqrt(V5_GLOBAL), rel=1e-6)


def test_v4_first_layer_is_not_even_local():
    # zero pre-activations: the cones where each neuron also sees the other input contain
    # the layer, and there w1 = w2 = (1/2, 1/2) has ||W||^2 = 1 < 2
    v4 = construction("V4")
    first = by_layer(v4.model, v4.x, v4.y)["fc1"]
    assert first.patterns == 4 + 16
    assert first.local_value == pytest.approx(1.0, rel=1e-12)
    assert first.global_value == pytest.approx(1.0, rel=1e-12)
    assert first.is_local() is False and first.probe_gain > 1e-3


@pytest.mark.parametrize("depth", [2, 3])
def test_v6_layers_are_per_layer_global_at_the_balanced_value(depth):
    v6 = construction(f"V6-L{depth}")
    expected = 1.25 ** (1 / depth)  # ||W_l||^2 = ||w_SVM||^(2/L) for balanced layers
    for result in per_layer_optimality(v6.model, v6.x, v6.y, n_random=60):
        assert result.method == LINEAR
        assert result.norm_sq == pytest.approx(expected, rel=1e-12)
        assert result.global_value == pytest.approx(expected, rel=1e-12)
        assert result.is_global() and result.is_local()


def test_a_linear_network_off_its_kkt_point_matches_the_svm_closed_forms():
    # f = v^T W x. With v fixed the best W is v p^T / ||v||^2, p the SVM: ||w_SVM||^2 / ||v||^2.
    # With W fixed, v is the SVM of the features W x: 1 / gamma_SVM(W x)^2.
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.5]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    model = DeepLinear(2, hidden=[3], seed=4).double()
    with torch.no_grad():
        model.body.fc1.weight.copy_(torch.tensor([[0.5, -1.0], [0.3, -0.2], [0.1, 0.4]]))
        model.body.fc2.weight.copy_(torch.tensor([[1.0, 0.5, -0.2]]))
    layers = by_layer(model, x, y)
    svm = linear_svm(x, y)
    v = model.body.fc2.weight.detach()[0].numpy()
    assert layers["fc1"].global_value == pytest.approx(1 / svm.margin**2 / (v @ v), rel=1e-9)
    features = x @ model.body.fc1.weight.detach().T
    assert layers["fc2"].global_value == pytest.approx(
        1 / linear_svm(features, y).margin ** 2, rel=1e-9
    )
    # an arbitrary point is not optimal layer by layer, and the probe sees it
    assert not layers["fc1"].is_global() and layers["fc1"].probe_gain > 1e-6


def test_layer_methods_and_names():
    assert layer_names(MLP(2, [3, 3], 1)) == ["fc1", "fc2", "fc3"]
    deep = MLP(2, [3, 3], 1)
    assert [layer_method(deep, n) for n in layer_names(deep)] == [UNDECIDED, UNDECIDED, LINEAR]
    two_outputs = MLP(2, [3], 2)
    assert layer_method(two_outputs, "fc1") == UNDECIDED
    v3r = construction("V3r")
    layers = per_layer_optimality(v3r.model, v3r.x, v3r.y, n_random=30)
    assert [r.method for r in layers] == [UNDECIDED, UNDECIDED, LINEAR]
    assert layers[0].is_local() is None and layers[0].global_value is None
    assert layers[0].probe_gain <= 1e-12  # the numerical probe still runs


def test_bad_input_names_the_problem():
    v5 = construction("V5")
    with pytest.raises(ValueError, match="fc9"):
        per_layer_optimality(v5.model, v5.x, v5.y, layers=["fc9"])
    with pytest.raises(ValueError, match="q_min"):
        per_layer_optimality(v5.model, v5.x, 1 - v5.y, n_random=10)


def test_too_many_patterns_leave_the_global_value_undecided():
    v5 = construction("V5")
    first = per_layer_optimality(v5.model, v5.x, v5.y, n_random=10, max_patterns=8)[0]
    assert first.global_value is None and first.is_global() is None
    assert first.is_local() is True
    assert np.isfinite(first.norm_sq)
