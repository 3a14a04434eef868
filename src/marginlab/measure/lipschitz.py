"""A certified lower bound on the robust radius, from the margin (Lyu & Li 2020, A15).

For a sample ``(x, y)`` the robust radius is at least ``min_j s_j(x) / Lip(f_y - f_j)``:
a perturbation shorter than that cannot close any margin. Each Lipschitz constant is bounded
by a product of layer bounds (spectral norms of linear and convolutional layers, exact
constants of pooling and activations), so the bound is sound, never an estimate. An attack
(:mod:`marginlab.measure.attacks`) bounds the same radius from above.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from marginlab.measure.margins import pairwise_margins
from marginlab.models.activations import Activation
from marginlab.models.base import Scale

NORMS = ("l2", "linf")

# Lipschitz constants (in the L2 norm) of the elementwise activations that have one.
ACTIVATION_LIPSCHITZ: Mapping[str, Callable[[Mapping[str, Any]], float]] = {
    "relu": lambda params: 1.0,
    "identity": lambda params: 1.0,
    "leaky_relu": lambda params: max(1.0, abs(params["negative_slope"])),
    "softplus": lambda params: 1.0,
    "leaky_softplus": lambda params: 1.0,  # phi' = c + (1 - c) sigmoid in [c, 1]
}


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _conv_norm_bound(conv: nn.Conv2d, in_shape: Sequence[int]) -> float:
    """Upper bound on the L2 operator norm of ``conv`` (no bias) on ``in_shape`` inputs.

    The zero-padded convolution is a restriction of the circular one on a grid large enough
    that nothing wraps around (embedding and restriction, strides included, do not increase
    norms), and the circular one is block-diagonalised by the 2-D DFT: its norm is the
    largest spectral norm of the ``c_out x c_in`` kernel transforms (Sedghi et al. 2019).
    Power iteration would only approach the norm from below, which could make the radius
    bound unsound.
    """
    if conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError(
            f"model: the Lipschitz bound handles zero-padded, ungrouped Conv2d only; got {conv}"
        )
    kernel_size, dilation = _pair(conv.kernel_size), _pair(conv.dilation)
    spans = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
    if conv.padding == "same":
        pads = spans
    elif conv.padding == "valid":
        pads = [0, 0]
    else:
        pads = list(_pair(conv.padding))
    grid = [n + max(p, s) for n, p, s in zip(in_shape[-2:], pads, spans, strict=True)]
    weight = conv.weight.detach().to(device="cpu", dtype=torch.float64)
    placed = weight.new_zeros(*weight.shape[:2], *grid)
    placed[:, :, : spans[0] + 1 : dilation[0], : spans[1] + 1 : dilation[1]] = weight
    spectrum = torch.fft.fft2(placed).permute(2, 3, 0, 1)
    return float(torch.linalg.matrix_norm(spectrum, ord=2).max())


def _pool_lipschitz(pool: nn.MaxPool2d | nn.AvgPool2d) -> float:
    kernel = _pair(pool.kernel_size)
    stride = _pair(pool.stride or pool.kernel_size)
    if isinstance(pool, nn.MaxPool2d) and _pair(pool.dilation) != (1, 1):
        raise ValueError(f"model: no Lipschitz bound for a dilated max pool ({pool})")
    if isinstance(pool, nn.AvgPool2d) and (_pair(pool.padding) != (0, 0) or pool.ceil_mode):
        raise ValueError(f"model: no Lipschitz bound for a padded or ceil-mode avg pool ({pool})")
    # Windows sharing one input pixel, at most.
    overlap = math.ceil(kernel[0] / stride[0]) * math.ceil(kernel[1] / stride[1])
    if isinstance(pool, nn.MaxPool2d):
        return math.sqrt(overlap)  # |max a - max b| <= ||a - b||_2 window by window
    return math.sqrt(overlap / (kernel[0] * kernel[1]))  # |mean a| <= ||a||_2 / sqrt(k^2)


def _layer_lipschitz(layer: nn.Module, in_shape: Sequence[int]) -> float:
    """Upper bound on the L2 Lipschitz constant of one layer (its bias does not matter)."""
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))
    if isinstance(layer, nn.Conv2d):
        return _conv_norm_bound(layer, in_shape)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool_lipschitz(layer)
    if isinstance(layer, (nn.Flatten, nn.Identity, nn.ReLU)):
        return 1.0
    if isinstance(layer, Scale):
        return abs(layer.factor)
    if isinstance(layer, nn.LeakyReLU):
        return max(1.0, abs(layer.negative_slope))
    if isinstance(layer, Activation) and layer.name in ACTIVATION_LIPSCHITZ:
        return ACTIVATION_LIPSCHITZ[layer.name](layer.params)
    raise ValueError(
        f"model: no Lipschitz bound for layer {layer}; the bound covers Linear, Conv2d, "
        f"max/avg pooling, Flatten, Scale and the activations {sorted(ACTIVATION_LIPSCHITZ)}"
    )


def _sequential_layers(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return list(model)
    body = getattr(model, "body", None)
    if isinstance(body, nn.Sequential):
        return list(body)
    raise ValueError(
        f"model: the Lipschitz bound needs a sequential network (an nn.Sequential, or a zoo "
        f"model with a .body); got {type(model).__name__}"
    )


def lipschitz_constants(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """Upper bounds ``L_ij`` on the L2 Lipschitz constants of the logit gaps ``f_i - f_j``.

    The output layer enters through its rows, ``||w_i - w_j||_2``; every layer before it
    through a bound on its own constant (spectral norm of a linear or convolutional layer,
    1 for ReLU and non-overlapping max pooling): ``L_ij = ||w_i - w_j|| prod_l Lip_l``.
    A binary single-output model counts as the two logits ``[-f/2, f/2]``.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Sequential`` or a zoo model (its ``.body``) ending in a linear layer
        (possibly followed by a :class:`~marginlab.models.base.Scale`).
    input_shape : sequence of int
        One input's shape, e.g. ``(1, 8, 8)``.

    Returns
    -------
    torch.Tensor
        ``(C, C)`` float64 on the CPU, zero on the diagonal.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False))
    >>> _ = net[0].weight.data.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    >>> lipschitz_constants(net, (2,)).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    layers = _sequential_layers(model)
    linear = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    if not linear:
        raise ValueError("model: the Lipschitz bound needs a final nn.Linear layer")
    last = linear[-1]
    output_scale = 1.0
    for layer in layers[last + 1 :]:
        if not isinstance(layer, (Scale, nn.Identity)):
            raise ValueError(
                f"model: only Scale may follow the output layer for the Lipschitz bound; "
                f"found {layer}"
            )
        output_scale *= _layer_lipschitz(layer, ())
    weight = layers[last].weight.detach()
    h = torch.zeros(1, *input_shape, dtype=weight.dtype, device=weight.device)
    chain = 1.0
    with torch.no_grad():
        for layer in layers[:last]:
            chain *= _layer_lipschitz(layer, tuple(h.shape[1:]))
            h = layer(h)
    weight = weight.to(device="cpu", dtype=torch.float64) * output_scale
    if weight.shape[0] == 1:
        weight = torch.cat([-weight / 2, weight / 2])
    gaps = (weight[:, None, :] - weight[None, :, :]).norm(dim=2)
    return chain * gaps


def certified_radius(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "l2",
    batch_size: int = 4096,
) -> np.ndarray:
    """Per-sample lower bound on the robust radius from the margin (Lyu & Li A15).

    ``R_n >= min_{j != y_n} s_nj / L_{y_n j}`` in L2, with ``s_nj = f_{y_n}(x_n) - f_j(x_n)``
    and ``L`` from :func:`lipschitz_constants`: a perturbation shorter than that cannot close
    any margin. For L-inf, ``||d||_2 <= sqrt(dim) ||d||_inf`` divides the bound by
    ``sqrt(dim)``. Misclassified samples get 0. The box is ignored, which only makes the bound
    smaller. The bound is invariant to rescaling the parameters of a homogeneous network.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`lipschitz_constants`.
    x, y : torch.Tensor
        Inputs and class indices.
    norm : {"l2", "linf"}
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64, ``>= 0``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False)).double()
    >>> _ = net[0].weight.data.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> round(float(certified_radius(net, x, torch.tensor([0]))[0]), 6)  # sqrt(2) / 2
    0.707107
    """
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    lipschitz = lipschitz_constants(model, tuple(x.shape[1:]))
    radii = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            part = x[start : start + batch_size]
            labels = y[start : start + batch_size]
            margins = pairwise_margins(model(part), labels).cpu()
            labels = labels.cpu()
            if margins.shape[1] == 1:
                pair = lipschitz[0, 1].expand(len(labels), 1)
            else:
                others = ~nn.functional.one_hot(labels, lipschitz.shape[0]).bool()
                pair = lipschitz[labels][others].view(len(labels), -1)
            ratio = torch.nan_to_num(margins / pair, nan=0.0, posinf=math.inf, neginf=0.0)
            radii.append(ratio.min(dim=1).values.clamp(min=0.0))
    radius = torch.cat(radii).numpy() if radii else np.zeros(0)
    if norm == "linf":
        radius = radius / math.sqrt(math.prod(x.shape[1:]))
    return radius
