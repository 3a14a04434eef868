"""The protocol every zoo model follows, and the order bookkeeping of sequential nets.

A sequential net's homogeneity order is computed by walking its layers (never declared by
hand): the input has order 0 in ``theta``; a parametrized layer ``W h + b`` maps order ``o``
to ``o + 1`` (``o`` if ``W`` is frozen); an activation of degree ``k`` maps ``o`` to ``k o``;
pooling, flattening and constant scaling keep ``o``. The bias ``b`` has order 1 (0 if
frozen), so it keeps the net homogeneous only where it matches ``W h``: in practice only in
the first trainable layer. A non-homogeneous activation breaks homogeneity unless its input
carries no trainable parameter (order 0), e.g. behind a frozen first layer.

The same walk gives the multi-homogeneity degree of each layer group: scaling only layer
``i`` by ``c`` scales ``f`` by ``c^{k_i}`` with ``k_i`` the product of the activation degrees
after layer ``i`` (Lyu & Li section 4.4). For a non-homogeneous net the degrees are those of
its homogenization (every such activation here behaves like a degree-1 (leaky) ReLU at
scale), which is the reference code's per-layer norm convention.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import skip_init

from marginlab.models.activations import Activation
from marginlab.models.conv import SameConv2d

BIAS_MODES = ("none", "first", "all")
"""``none``: no bias; ``first``: first layer only (homogeneous); ``all``: every layer."""

Initializer = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class LayerGroup:
    """The trainable parameters of one layer and its multi-homogeneity degree.

    Attributes
    ----------
    name : str
        Layer name (``conv1``, ``fc2``, ``output``...).
    params : tuple of nn.Parameter
        Weight, plus the bias when that bias keeps the net homogeneous (first layer).
    degree : float
        ``k_i``: scaling only ``params`` by ``c`` scales the output by ``c^{k_i}``.
    """

    name: str
    params: tuple[nn.Parameter, ...]
    degree: float


class Scale(nn.Module):
    """Multiply by a fixed constant (the ``1/m`` of a mean-field output layer)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


_ORDER_PRESERVING = (nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, Scale)


class HomogeneousNet(nn.Module):
    """Base class of the zoo: ``forward``, ``homogeneity_order``, ``layer_groups``, ``describe``.

    ``forward(x)`` returns ``(N, n_outputs)``. ``homogeneity_order`` is the order ``L`` with
    ``f(c theta; x) = c^L f(theta; x)`` for ``c > 0``, ``theta`` the trainable parameters, or
    ``None`` when no such ``L`` exists. Both it and ``layer_groups()`` follow the current
    ``requires_grad`` flags, so freezing a layer after construction is accounted for.

    Attributes
    ----------
    n_outputs : int
        Width of the output (1 for a binary model).
    """

    def __init__(self, summary: str, n_outputs: int) -> None:
        super().__init__()
        self._summary = summary
        self.n_outputs = n_outputs

    @property
    def homogeneity_order(self) -> float | None:
        raise NotImplementedError

    def layer_groups(self) -> list[LayerGroup]:
        """Return one :class:`LayerGroup` per trainable layer, in forward order."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line: architecture, bias mode, activation, order and parameter count."""
        order = self.homogeneity_order
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        count = f"{total:,} params" + ("" if trainable == total else f" ({trainable:,} trainable)")
        return f"{self._summary} | L={'none' if order is None else f'{order:g}'} | {count}"


class SequentialNet(HomogeneousNet):
    """A :class:`HomogeneousNet` whose forward pass is ``self.body``, an ``nn.Sequential``.

    The body may hold ``nn.Linear``, ``nn.Conv2d``, :class:`Activation`, ``nn.MaxPool2d``,
    ``nn.AvgPool2d``, ``nn.Flatten`` and :class:`Scale`; the order and the layer degrees are
    computed from it (module docstring).
    """

    def __init__(
        self, layers: Sequence[tuple[str, nn.Module]], summary: str, n_outputs: int
    ) -> None:
        super().__init__(summary, n_outputs)
        self.body = nn.Sequential(OrderedDict(layers))
        self._analyze()  # fail at construction on a layer the bookkeeping does not know

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @property
    def homogeneity_order(self) -> float | None:
        return self._analyze()[0]

    def layer_groups(self) -> list[LayerGroup]:
        return self._analyze()[1]

    def _analyze(self) -> tuple[float | None, list[LayerGroup]]:
        order, exact = 0.0, True
        groups: list[tuple[str, tuple[nn.Parameter, ...]]] = []
        degrees: list[float] = []
        for name, module in self.body.named_children():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                weight, bias = module.weight, module.bias
                order += float(weight.requires_grad)
                params = (weight,) if weight.requires_grad else ()
                if bias is not None:
                    if float(bias.requires_grad) != order:
                        exact = False
                    elif bias.requires_grad:
                        params += (bias,)
                if params:
                    groups.append((name, params))
                    degrees.append(1.0)
            elif isinstance(module, Activation):
                if module.degree is None and order > 0:
                    exact = False
                order *= module.scale_degree
                degrees = [degree * module.scale_degree for degree in degrees]
            elif not isinstance(module, _ORDER_PRESERVING):
                raise TypeError(f"layer {name}: no homogeneity rule for {type(module).__name__}")
        layer_groups = [
            LayerGroup(name, params, degree)
            for (name, params), degree in zip(groups, degrees, strict=True)
        ]
        return (order if exact else None), layer_groups


def layer_has_bias(bias: str, index: int) -> bool:
    """Whether parametrized layer ``index`` (0-based) gets a bias under mode ``bias``."""
    return bias == "all" or (bias == "first" and index == 0)


def dense(
    in_features: int,
    out_features: int,
    *,
    bias: bool,
    generator: torch.Generator,
    init: Initializer,
) -> nn.Linear:
    """An ``nn.Linear`` with ``init`` weights and zero bias, drawing only from ``generator``."""
    # skip_init: torch's default init would consume (and shift) the global RNG.
    layer = skip_init(
        nn.Linear, in_features, out_features, bias=bias, device=torch.get_default_device()
    )
    return _initialized(layer, in_features, generator, init)


def conv(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    *,
    bias: bool,
    generator: torch.Generator,
    init: Initializer,
) -> SameConv2d:
    """A stride-1 SAME-padded convolution with ``init`` weights (fan-in ``kh kw c_in``)."""
    layer = skip_init(
        SameConv2d, in_channels, out_channels, kernel, bias=bias, device=torch.get_default_device()
    )
    return _initialized(layer, kernel[0] * kernel[1] * in_channels, generator, init)


def _initialized(
    layer: nn.Module, fan_in: int, generator: torch.Generator, init: Initializer
) -> nn.Module:
    if layer.weight.is_meta:
        return layer  # built under torch.device("meta") to be measured: nothing to draw
    with torch.no_grad():
        init(layer.weight, fan_in, generator)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer
