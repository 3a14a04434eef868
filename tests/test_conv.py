"""The zoo's SAME convolution: its dense path agrees with torch's convolution."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from marginlab.models import build_model
from marginlab.models.conv import SameConv2d


def _layer(c_in, c_out, kernel, bias, seed=0):
    torch.manual_seed(seed)
    layer = SameConv2d(c_in, c_out, kernel, bias=bias).double()
    if bias:
        nn.init.normal_(layer.bias)
    return layer


@pytest.mark.parametrize(
    "c_in, c_out, kernel, shape, bias",
    [
        (8, 16, (3, 3), (4, 4), False),
        (1, 4, (3, 3), (3, 5), True),
        (3, 5, (2, 2), (2, 2), True),
        (2, 3, (3, 5), (3, 4), False),
        (4, 2, (1, 1), (1, 2), False),
        (2, 2, (5, 5), (5, 5), True),
        (6, 7, (4, 4), (2, 3), False),
    ],
)
def test_dense_path_matches_torch_conv_in_value_and_gradients(c_in, c_out, kernel, shape, bias):
    layer = _layer(c_in, c_out, kernel, bias)
    x = torch.randn(70, c_in, *shape, dtype=torch.float64, requires_grad=True)
    assert layer._dense_pays(x)
    out = layer(x)
    reference = F.conv2d(x, layer.weight, layer.bias, padding="same")
    assert out.shape == reference.shape
    assert torch.allclose(out, reference, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(out)
    ours = torch.autograd.grad(out, [x, *layer.parameters()], upstream)
    theirs = torch.autograd.grad(reference, [x, *layer.parameters()], upstream)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "dtype, batch, shape",
    [
        (torch.float32, 100, (4, 4)),  # float32 has a fast convolution
        (torch.float64, 10, (4, 4)),  # too few samples to pay for the matrix
        (torch.float64, 100, (8, 8)),  # the matrix would cost 7x the multiply-adds
    ],
)
def test_torch_conv_is_kept_where_the_dense_path_does_not_pay(dtype, batch, shape):
    layer = _layer(8, 16, (3, 3), bias=True).to(dtype)
    x = torch.randn(batch, 8, *shape, dtype=dtype)
    assert not layer._dense_pays(x)
    assert torch.equal(layer(x), F.conv2d(x, layer.weight, layer.bias, padding="same"))


def test_state_dict_is_that_of_a_torch_conv():
    layer = _layer(8, 16, (3, 3), bias=True)
    plain = nn.Conv2d(8, 16, (3, 3), padding="same").double()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(100, 8, 4, 4, dtype=torch.float64)
    assert torch.allclose(plain(x), layer(x), rtol=1e-12, atol=1e-12)


def test_the_digits_cnn_gives_the_same_outputs_either_way():
    model = build_model(
        {"kind": "cnn", "spec": "conv3x3-8,maxpool,conv3x3-16,maxpool,fc10", "bias": "first"},
        input_shape=(1, 8, 8),
        n_outputs=10,
    ).double()
    x = torch.rand(200, 1, 8, 8, dtype=torch.float64)
    per_sample = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
    assert torch.allclose(model(x), per_sample, rtol=1e-12, atol=1e-12)
