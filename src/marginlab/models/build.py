"""Build a zoo model from a config mapping, with errors that name the bad key."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from marginlab.models.activations import ACTIVATION_PARAMETERS
from marginlab.models.cnn import CNN, vgg16
from marginlab.models.linear import DeepLinear, DiagonalLinear, Linear
from marginlab.models.mlp import MLP
from marginlab.models.two_layer import TwoLayer

MODEL_KINDS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "mlp": (MLP, "fully connected net; keys hidden, activation, bias"),
    "cnn": (CNN, "conv net from a one-line spec, e.g. 'conv3x3-16,maxpool,fc10'"),
    "vgg16": (vgg16, "Lyu & Li's VGG-16 variant (13 convs + fc), order 14"),
    "linear": (Linear, "linear predictor W x, order 1"),
    "deep_linear": (DeepLinear, "product of matrices; keys hidden or depth+width"),
    "diagonal_linear": (DiagonalLinear, "<u^D - v^D, x>; keys depth, init_scale"),
    "two_layer": (TwoLayer, "mean-field (1/m) two-layer net; keys width, train, activation"),
}
"""Model kind -> (constructor, one-line description)."""

# Filled in by build_model from its own arguments, so they are not config keys.
_SUPPLIED = ("input_dim", "input_shape", "n_outputs")


def _keys(constructor: Callable[..., nn.Module]) -> tuple[list[str], list[str]]:
    """Return the (allowed, required) config keys of ``constructor``."""
    allowed, required = [], []
    for name, parameter in inspect.signature(constructor).parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            allowed += sorted(ACTIVATION_PARAMETERS)
        elif name not in _SUPPLIED:
            allowed.append(name)
            if parameter.default is parameter.empty:
                required.append(name)
    return allowed, required


def with_output_width(spec: str, width: int) -> str:
    """A cnn spec whose last (fully connected) layer is ``width`` wide: what ``outputs: auto``
    does, so that a preset trained on 10 classes takes ``data.classes=[0, 1]`` unchanged.

    Examples
    --------
    >>> with_output_width("conv3x3-8,maxpool,fc64,fc10", 2)
    'conv3x3-8,maxpool,fc64,fc2'
    """
    *layers, last = spec.split(",")
    if not re.fullmatch(r"\s*fc\d+\s*", last):
        raise ValueError(
            f"outputs: auto sets the width of the spec's last layer, which must be fully "
            f"connected (fcN); got {last.strip()!r}"
        )
    return ",".join([*layers, f"fc{width}"])


def model_keys(kind: str) -> list[tuple[str, str]]:
    """The config keys of a model kind with their defaults (``"required"`` where it has
    none), as ``marginlab config --list`` shows them.

    Examples
    --------
    >>> model_keys("linear")
    [('seed', '0')]
    >>> dict(model_keys("cnn"))["spec"], dict(model_keys("cnn"))["bias"]
    ('required', 'none')
    """
    constructor = MODEL_KINDS[kind][0]
    allowed, _ = _keys(constructor)
    parameters = inspect.signature(constructor).parameters
    # auto: the last layer as wide as the data's classes need (1 for a binary logistic model)
    keys = [("outputs", "null (or auto)")] if kind == "cnn" else []
    for name in allowed:
        parameter = parameters.get(name)
        if parameter is None:  # an activation's parameter, passed on through **kwargs
            keys.append((name, "the activation's"))
        elif parameter.default is parameter.empty:
            keys.append((name, "required"))
        else:
            default = parameter.default
            keys.append((name, "null" if default is None else str(default)))
    return keys


def build_model(
    config: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int
) -> nn.Module:
    """Build the model described by ``config`` for inputs of ``input_shape``.

    Parameters
    ----------
    config : mapping
        ``"kind"`` (a key of :data:`MODEL_KINDS`) plus the constructor's keyword arguments,
        e.g. ``{"kind": "cnn", "spec": "conv3x3-16,maxpool,fc10", "bias": "first"}``.
        ``input_dim`` / ``input_shape`` / ``n_outputs`` come from the other arguments (a
        ``cnn`` takes its output width from its spec).
    input_shape : tuple of int
        Shape of one input, e.g. ``(1, 28, 28)``; flat models use its product.
    n_outputs : int
        Output width (1 for a binary model).

    Returns
    -------
    nn.Module
        A :class:`~marginlab.models.base.HomogeneousNet`.

    Raises
    ------
    ValueError
        Unknown kind, unknown or missing key (the message lists the allowed keys), or an
        invalid value.

    Examples
    --------
    >>> net = build_model({"kind": "mlp", "hidden": [16], "bias": "first"}, (1, 4, 4), 1)
    >>> net.describe()
    'mlp 16-16-1 | bias=first | relu | L=2 | 288 params'
    """
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {', '.join(MODEL_KINDS)}; got {kind!r}")
    if kind == "cnn" and "outputs" in config:
        outputs = config.pop("outputs")
        if outputs not in (None, "auto"):
            raise ValueError(f"outputs: expected auto or null, got {outputs!r}")
        if outputs == "auto" and isinstance(config.get("spec"), str):
            config["spec"] = with_output_width(config["spec"], n_outputs)
    constructor = MODEL_KINDS[kind][0]
    allowed, required = _keys(constructor)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(
            f"model kind {kind!r} got unknown key(s) {', '.join(unknown)}; "
            f"allowed keys: kind, {', '.join(allowed)}"
        )
    missing = [key for key in required if key not in config]
    if missing:
        raise ValueError(f"model kind {kind!r} needs key(s) {', '.join(missing)}")
    parameters = inspect.signature(constructor).parameters
    if "input_shape" in parameters:
        config["input_shape"] = tuple(input_shape)
    else:
        config["input_dim"] = math.prod(input_shape)
    if "n_outputs" in parameters:
        config["n_outputs"] = n_outputs
    elif "spec" not in parameters and n_outputs != 1:
        raise ValueError(f"model kind {kind!r} has a single output; got n_outputs={n_outputs}")
    return constructor(**config)
