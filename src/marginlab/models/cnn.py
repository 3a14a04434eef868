"""Convolutional nets from a one-line spec, including Lyu & Li's MNIST CNN and VGG-16 variant."""

from __future__ import annotations

import re
from typing import Any

from marginlab.models import _checks
from marginlab.models._stack import Token, build_stack
from marginlab.models.base import SequentialNet
from marginlab.models.init import he_normal_

SPEC_GRAMMAR = (
    "comma-separated tokens conv{kh}x{kw}-{channels} (stride 1, SAME padding), "
    "maxpool[{k}] or avgpool[{k}] (k x k, stride k, default k=2) and fc{units} "
    "(flattens on first use), ending with an fc token, e.g. 'conv3x3-16,maxpool,fc10'"
)

MNIST_CNN_SPEC = "conv5x5-32,maxpool,conv3x3-64,maxpool,fc1024,fc10"
"""Lyu & Li's MNIST CNN (section C.2; conv2 is 3x3 as in their code), order 4."""

_TOKEN = re.compile(
    r"conv(?P<kh>\d+)x(?P<kw>\d+)-(?P<channels>\d+)|(?P<pool>maxpool|avgpool)(?P<k>\d*)"
    r"|fc(?P<units>\d+)"
)


def parse_spec(spec: str) -> list[Token]:
    """Parse a CNN spec (grammar in :data:`SPEC_GRAMMAR`) into tokens.

    Raises
    ------
    ValueError
        Naming the first bad token and the grammar.

    Examples
    --------
    >>> [t.kind for t in parse_spec("conv3x3-8, maxpool, fc10")]
    ['conv', 'maxpool', 'fc']
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a non-empty string of {SPEC_GRAMMAR}; got {spec!r}")
    tokens = []
    for text in (part.strip() for part in spec.split(",")):
        match = _TOKEN.fullmatch(text)
        if match is None:
            raise ValueError(
                f"spec token {text!r} in {spec!r} is not valid; expected {SPEC_GRAMMAR}"
            )
        sizes = [int(v) for v in match.groupdict().values() if v and v.isdigit()]
        if 0 in sizes:
            raise ValueError(f"spec token {text!r} in {spec!r}: sizes must be positive")
        if match["pool"]:
            k = int(match["k"] or 2)
            tokens.append(Token(text, match["pool"], kernel=(k, k)))
        elif match["units"]:
            tokens.append(Token(text, "fc", width=int(match["units"])))
        else:
            kernel = (int(match["kh"]), int(match["kw"]))
            tokens.append(Token(text, "conv", kernel=kernel, width=int(match["channels"])))
    if tokens[-1].kind != "fc":
        raise ValueError(
            f"spec {spec!r} ends with {tokens[-1].text!r}; the last token must be fc (the "
            f"output layer); expected {SPEC_GRAMMAR}"
        )
    return tokens


def vgg16_spec(n_outputs: int = 10) -> str:
    """Lyu & Li's VGG-16 variant: 13 SAME 3x3 convs in 5 max-pooled blocks, then one fc.

    Examples
    --------
    >>> vgg16_spec(10).count("conv"), vgg16_spec(10).split(",")[-1]
    (13, 'fc10')
    """
    blocks = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
    layers = [token for c, n in blocks for token in [f"conv3x3-{c}"] * n + ["maxpool"]]
    return ",".join([*layers, f"fc{_checks.positive_int('n_outputs', n_outputs)}"])


class CNN(SequentialNet):
    """A conv net built from a one-line spec; He-normal weights, zero biases.

    The activation follows every conv and fc layer except the last; the output width is
    the last fc's. With ``bias="none"`` or ``"first"`` (the paper's "without bias") and a
    homogeneous activation the order is the number of conv + fc layers (for ReLU).

    Parameters
    ----------
    spec : str
        Layers, e.g. :data:`MNIST_CNN_SPEC`; grammar in :data:`SPEC_GRAMMAR`.
    input_shape : tuple of int
        ``(C, H, W)``.
    activation : str
        A name from :data:`marginlab.models.activations.ACTIVATIONS`.
    bias : {"none", "first", "all"}
        Which layers have a bias.
    seed : int
        Seed of the weight draw; equal seeds give bitwise-equal weights.
    **activation_kw
        Parameters of the activation (``k`` for ``relu_k``...).

    Examples
    --------
    >>> import torch
    >>> net = CNN("conv3x3-4,maxpool,fc2", (1, 8, 8), bias="first")
    >>> net(torch.zeros(5, 1, 8, 8)).shape, net.homogeneity_order
    (torch.Size([5, 2]), 2.0)
    """

    def __init__(
        self,
        spec: str,
        input_shape: tuple[int, int, int],
        *,
        activation: str = "relu",
        bias: str = "none",
        seed: int = 0,
        **activation_kw: Any,
    ) -> None:
        tokens = parse_spec(spec)
        shape = _checks.positive_ints("input_shape", input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
        layers, label = build_stack(
            tokens,
            shape,
            activation=activation,
            activation_kw=activation_kw,
            bias=bias,
            seed=seed,
            init=he_normal_,
        )
        arch = ",".join(token.text for token in tokens)
        super().__init__(layers, f"cnn {arch} | bias={bias} | {label}", tokens[-1].width)


def vgg16(
    input_shape: tuple[int, int, int] = (3, 32, 32),
    n_outputs: int = 10,
    *,
    bias: str = "none",
    activation: str = "relu",
    seed: int = 0,
    **activation_kw: Any,
) -> CNN:
    """Lyu & Li's CIFAR VGG-16 variant (no fc-4096 layers): a :class:`CNN` of order 14.

    Their "without bias" runs use ``bias="first"``.

    Examples
    --------
    >>> vgg16(bias="first").homogeneity_order
    14.0
    """
    return CNN(
        vgg16_spec(n_outputs),
        input_shape,
        activation=activation,
        bias=bias,
        seed=seed,
        **activation_kw,
    )
