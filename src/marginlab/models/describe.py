"""Describe a network as plain data, so that a run directory can rebuild it without code.

A run written by :func:`marginlab.fit` records its network in ``config.yaml``: a zoo model by
its build spec, a ``torch.nn.Sequential`` of standard layers layer by layer (with the names of
the frozen parameters). Its weights are in the checkpoints, so :func:`rebuild` and
``load_state_dict`` give back the trained network. Any other module cannot be described; its
run reopens from Python with ``load_run(path, model=a_module_of_the_same_shape)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from marginlab.models.activations import Activation, make_activation

# layer type -> the constructor arguments that rebuild it
_LAYERS: dict[type[nn.Module], Callable[[Any], dict]] = {
    nn.Linear: lambda m: {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    },
    nn.Conv2d: lambda m: {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
        "dilation": list(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
    },
    nn.ReLU: lambda m: {},
    nn.LeakyReLU: lambda m: {"negative_slope": m.negative_slope},
    nn.GELU: lambda m: {"approximate": m.approximate},
    nn.SiLU: lambda m: {},
    nn.Softplus: lambda m: {"beta": m.beta, "threshold": m.threshold},
    nn.Tanh: lambda m: {},
    nn.Identity: lambda m: {},
    nn.Flatten: lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    nn.MaxPool2d: lambda m: {"kernel_size": m.kernel_size, "stride": m.stride},
    nn.AvgPool2d: lambda m: {"kernel_size": m.kernel_size, "stride": m.stride},
}
_BY_NAME = {layer.__name__: layer for layer in _LAYERS}


def describe(model: nn.Module) -> dict | None:
    """Plain data that :func:`rebuild` turns back into ``model``'s architecture, or None.

    Parameters
    ----------
    model : nn.Module
        A zoo model, or a ``torch.nn.Sequential`` of standard layers (linear, convolution,
        activations, pooling, flattening, nested sequentials, marginlab activations).

    Returns
    -------
    dict or None
        ``{"kind": ..., ...}`` for a zoo model, ``{"kind": "sequential", "layers": [...],
        "frozen": [...]}`` for a sequential, None for anything else.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 1, bias=False))
    >>> description = describe(net)
    >>> [layer["type"] for layer in description["layers"]]
    ['Linear', 'ReLU', 'Linear']
    >>> rebuilt = rebuild(description)
    >>> rebuilt.load_state_dict(net.state_dict()) is not None
    True
    """
    spec = getattr(model, "build_spec", None)
    if spec is not None:
        return dict(spec)
    if not isinstance(model, nn.Sequential):
        return None
    layers = _layers(model)
    if layers is None:
        return None
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    return {"kind": "sequential", "layers": layers, "frozen": frozen}


def _layers(sequential: nn.Sequential) -> list[dict] | None:
    layers = []
    for child in sequential.children():
        if isinstance(child, nn.Sequential):
            inner = _layers(child)
            if inner is None:
                return None
            layers.append({"type": "Sequential", "layers": inner})
        elif isinstance(child, Activation):
            layers.append({"type": "Activation", "name": child.name, **child.params})
        elif type(child) in _LAYERS:
            layers.append({"type": type(child).__name__, **_LAYERS[type(child)](child)})
        else:
            return None
    return layers


def rebuild(description: dict) -> nn.Module:
    """The network :func:`describe` described (its weights are not part of the description).

    Raises
    ------
    ValueError
        For a description this module did not write.
    """
    if description.get("kind") != "sequential":
        from marginlab.models.build import build_model

        spec = dict(description)
        return build_model(spec, tuple(spec.pop("input_shape")), spec.pop("n_outputs"))
    model = _sequential(description["layers"])
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name not in description.get("frozen", []))
    return model.double()


def _sequential(layers: list[dict]) -> nn.Sequential:
    modules = []
    for layer in layers:
        layer = dict(layer)
        kind = layer.pop("type", None)
        if kind == "Sequential":
            modules.append(_sequential(layer["layers"]))
        elif kind == "Activation":
            modules.append(make_activation(layer.pop("name"), **layer))
        elif kind in _BY_NAME:
            modules.append(_BY_NAME[kind](**layer))
        else:
            raise ValueError(f"model.layers: unknown layer type {kind!r}")
    return nn.Sequential(*modules)
