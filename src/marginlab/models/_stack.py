"""Layer-by-layer construction shared by :class:`CNN`, :class:`MLP` and :class:`DeepLinear`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from marginlab.models import _checks
from marginlab.models.activations import make_activation
from marginlab.models.base import BIAS_MODES, Initializer, conv, dense, layer_has_bias


@dataclass(frozen=True)
class Token:
    """One layer of a stack: ``conv`` / ``maxpool`` / ``avgpool`` / ``fc``, as written."""

    text: str
    kind: str
    kernel: tuple[int, int] = (1, 1)
    width: int = 0


def fc_tokens(widths: Sequence[int]) -> list[Token]:
    """Dense layers of the given output widths."""
    return [Token(f"fc{width}", "fc", width=width) for width in widths]


def build_stack(
    tokens: Sequence[Token],
    input_shape: tuple[int, ...],
    *,
    activation: str,
    activation_kw: Mapping[str, Any],
    bias: str,
    seed: int,
    init: Initializer,
) -> tuple[list[tuple[str, nn.Module]], str]:
    """Return the named layers of ``tokens`` on ``input_shape`` and the activation's label.

    The activation follows every conv and fc layer except the last; the first fc layer is
    preceded by a flatten.
    """
    _checks.choice("bias", bias, BIAS_MODES)
    _checks.seed(seed)
    label = make_activation(activation, **activation_kw).label  # validates before building
    generator = torch.Generator().manual_seed(seed)
    n_params = sum(token.kind in ("conv", "fc") for token in tokens)
    shape, flat = tuple(input_shape), False
    layers: list[tuple[str, nn.Module]] = []
    counts = {"conv": 0, "fc": 0, "pool": 0}
    index = 0
    for token in tokens:
        if token.kind == "fc":
            if not flat:
                layers.append(("flatten", nn.Flatten()))
                shape, flat = (math.prod(shape),), True
            layer: nn.Module = dense(
                shape[0],
                token.width,
                bias=layer_has_bias(bias, index),
                generator=generator,
                init=init,
            )
            shape = (token.width,)
        else:
            if flat or len(shape) != 3:
                raise ValueError(
                    f"spec token {token.text!r} needs a (C, H, W) input but gets shape {shape}"
                    + (" (conv and pool layers must come before the first fc)" if flat else "")
                )
            if token.kind == "conv":
                layer = conv(
                    shape[0],
                    token.width,
                    token.kernel,
                    bias=layer_has_bias(bias, index),
                    generator=generator,
                    init=init,
                )
                shape = (token.width, *shape[1:])
            else:
                k = token.kernel[0]
                if min(shape[1:]) < k:
                    raise ValueError(
                        f"spec token {token.text!r}: its input is {shape[1]}x{shape[2]}, "
                        f"smaller than the {k}x{k} pool"
                    )
                counts["pool"] += 1
                pool = nn.MaxPool2d(k) if token.kind == "maxpool" else nn.AvgPool2d(k)
                layers.append((f"pool{counts['pool']}", pool))
                shape = (shape[0], shape[1] // k, shape[2] // k)
                continue
        index += 1
        counts[token.kind] += 1
        layers.append((f"{token.kind}{counts[token.kind]}", layer))
        if index < n_params:
            layers.append((f"act{index}", make_activation(activation, **activation_kw)))
    return layers, label
