"""Fully connected nets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marginlab.models import _checks
from marginlab.models._stack import build_stack, fc_tokens
from marginlab.models.base import SequentialNet
from marginlab.models.init import he_normal_


class MLP(SequentialNet):
    """A fully connected net on the flattened input; He-normal weights, zero biases.

    Parameters
    ----------
    input_dim : int
        Number of input features (after flattening).
    hidden : sequence of int
        Hidden widths (may be empty: a linear model).
    n_outputs : int
        Output width (1 for a binary model).
    activation : str
        A name from :data:`marginlab.models.activations.ACTIVATIONS`, after every hidden layer.
    bias : {"none", "first", "all"}
        Which layers have a bias; ``"all"`` makes the net non-homogeneous.
    seed : int
        Seed of the weight draw.
    **activation_kw
        Parameters of the activation (``k`` for ``relu_k``...).

    Examples
    --------
    >>> net = MLP(4, [8, 8], 1, activation="relu_k", k=2)
    >>> net.homogeneity_order, [g.degree for g in net.layer_groups()]
    (7.0, [4.0, 2.0, 1.0])
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        n_outputs: int,
        *,
        activation: str = "relu",
        bias: str = "none",
        seed: int = 0,
        **activation_kw: Any,
    ) -> None:
        _checks.positive_int("input_dim", input_dim)
        hidden = _checks.positive_ints("hidden", hidden)
        _checks.positive_int("n_outputs", n_outputs)
        layers, label = build_stack(
            fc_tokens([*hidden, n_outputs]),
            (input_dim,),
            activation=activation,
            activation_kw=activation_kw,
            bias=bias,
            seed=seed,
            init=he_normal_,
        )
        arch = "-".join(map(str, [input_dim, *hidden, n_outputs]))
        super().__init__(layers, f"mlp {arch} | bias={bias} | {label}", n_outputs)
