"""Give any module the homogeneity protocol of the zoo: an order and layer groups.

Zoo models compute ``homogeneity_order`` and ``layer_groups()`` from their layers. Any other
``nn.Module`` gets them from :func:`measure_homogeneity` (a few samples suffice: for a
homogeneous network the identities hold at every input) and :func:`declare_homogeneity`.
Its layers are its parametrised leaf modules (a ``Linear`` or convolution weight, with its
bias counted in its layer); the degree of layer ``i`` is ``k_i`` in
``f(..., c w_i, ...) = c^{k_i} f``, measured the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from marginlab.models.base import LayerGroup
from marginlab.models.homogeneity import check_homogeneity


@dataclass(frozen=True)
class MeasuredHomogeneity:
    """What :func:`measure_homogeneity` found.

    Attributes
    ----------
    order : float or None
        The order ``L``, or None when the module is not homogeneous.
    degrees : list of float
        ``k_i`` per layer (1 for every layer of a module that is not homogeneous: the
        per-layer norms then follow the reference convention of ReLU networks).
    reason : str
        Why there is no order (empty when there is one).
    """

    order: float | None
    degrees: list[float]
    reason: str = ""


def leaf_layers(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """The parametrised leaf modules with trainable parameters, in registration order.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1, bias=False))
    >>> [(name, len(params)) for name, params in leaf_layers(net)]
    [('0', 2), ('2', 1)]
    """
    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and not any(True for _ in module.children()):
            layers.append((name, own))
    return layers


def measure_homogeneity(
    model: nn.Module, x: torch.Tensor, rtol: float = 1e-6
) -> MeasuredHomogeneity:
    """Measure the order and the layer degrees of ``model`` on the inputs ``x``.

    Parameters
    ----------
    model : nn.Module
        Any network; its trainable parameters are ``theta``.
    x : torch.Tensor
        A few inputs (8 are plenty).
    rtol : float
        Relative error of the scaling and Euler identities below which the module counts as
        homogeneous.

    Returns
    -------
    MeasuredHomogeneity

    Examples
    --------
    >>> torch.manual_seed(0) is not None
    True
    >>> net = nn.Sequential(nn.Linear(3, 8, bias=False), nn.ReLU(), nn.Linear(8, 2, bias=False))
    >>> found = measure_homogeneity(net.double(), torch.randn(8, 3, dtype=torch.float64))
    >>> found.order, found.degrees
    (2.0, [1.0, 1.0])
    >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> measure_homogeneity(net.double(), torch.randn(8, 3, dtype=torch.float64)).order is None
    True
    """
    layers = leaf_layers(model)
    report = check_homogeneity(model, x, rtol=rtol)
    if not math.isfinite(report.measured_order):
        return MeasuredHomogeneity(None, [1.0] * len(layers), "every output is 0 on the samples")
    if not report.is_homogeneous:
        return MeasuredHomogeneity(
            None, [1.0] * len(layers), f"not homogeneous in its trainable parameters ({report})"
        )
    order = _integer_if_close(report.declared_order or report.measured_order)
    degrees = [_layer_degree(model, x, params) for _, params in layers]
    return MeasuredHomogeneity(order, degrees)


def _integer_if_close(value: float) -> float:
    return float(round(value)) if abs(value - round(value)) < 1e-6 else float(value)


def _layer_degree(model: nn.Module, x: torch.Tensor, params: list[nn.Parameter]) -> float:
    """``log2(||f(2 w_i)|| / ||f(w_i)||)``, rounded to an integer when it is one."""
    scaled = {id(p) for p in params}
    doubled = {
        name: 2.0 * p.detach() if id(p) in scaled else p.detach()
        for name, p in model.named_parameters()
    }
    with torch.no_grad():
        base = model(x).double().norm()
        after = functional_call(model, doubled, (x,)).double().norm()
    if base == 0:
        return 1.0
    return _integer_if_close(math.log2(float(after / base)))


class _LayerGroups:
    """``model.layer_groups()`` for a module that declares its measured degrees."""

    def __init__(self, model: nn.Module, degrees: list[float]) -> None:
        self.model, self.degrees = model, degrees

    def __call__(self) -> list[LayerGroup]:
        layers = leaf_layers(self.model)
        return [
            LayerGroup(name, tuple(params), degree)
            for (name, params), degree in zip(layers, self.degrees, strict=True)
        ]


def declare_homogeneity(
    model: nn.Module, order: float | None, degrees: list[float] | None
) -> nn.Module:
    """Give ``model`` the attributes ``homogeneity_order`` and ``layer_groups()`` of the zoo
    (a zoo model keeps its own). Returns ``model``.

    Examples
    --------
    >>> net = declare_homogeneity(nn.Sequential(nn.Linear(3, 1, bias=False)), 1.0, [1.0])
    >>> net.homogeneity_order, [g.name for g in net.layer_groups()]
    (1.0, ['0'])
    """
    if hasattr(type(model), "homogeneity_order"):
        return model
    model.homogeneity_order = order
    if degrees is not None:
        model.layer_groups = _LayerGroups(model, list(degrees))
    return model


def summary(model: nn.Module) -> str:
    """One line for a module that is not a zoo model: its leaf layers, order and size.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False))
    >>> summary(net)
    'Sequential: Linear(2->8), ReLU, Linear(8->1) | L=none | 24 params'
    """
    leaves = [m for m in model.modules() if not list(m.children())] or [model]
    shown = []
    for leaf in leaves[:12]:
        sizes = [getattr(leaf, key, None) for key in ("in_features", "out_features")]
        sizes = sizes if None not in sizes else [getattr(leaf, k, None) for k in _CONV_SIZES]
        text = type(leaf).__name__
        shown.append(f"{text}({sizes[0]}->{sizes[1]})" if None not in sizes else text)
    shown += [f"... {len(leaves) - 12} more"] if len(leaves) > 12 else []
    order = getattr(model, "homogeneity_order", None)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    count = f"{total:,} params" + ("" if trainable == total else f" ({trainable:,} trainable)")
    order_text = "none" if order is None else f"{order:g}"
    return f"{type(model).__name__}: {', '.join(shown)} | L={order_text} | {count}"


_CONV_SIZES = ("in_channels", "out_channels")
