"""The mean-field two-layer net ``f(x) = (1/m) sum_j b_j phi(<a_j, x>)`` (Chizat & Bach 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marginlab.models import _checks
from marginlab.models.activations import make_activation
from marginlab.models.base import BIAS_MODES, Scale, SequentialNet, dense

TRAIN_MODES = ("both", "output")


def _standard_normal_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator) -> None:
    tensor.normal_(generator=generator)


class TwoLayer(SequentialNet):
    """``f(x) = (1/m) sum_j b_j phi(<a_j, x>)``, with the mean-field ``1/m`` output scale.

    Init follows Chizat & Bach's reference code (``twonet``; ``chizat-vardi.md`` section 1):
    every entry of ``a_j`` and ``b_j`` is i.i.d. ``N(0, 1)`` (so ``a_j ~ N(0, I_d)``), biases
    start at 0. Their code starts ``b`` at 0 for output-only training; here ``b`` stays
    random in both modes so ``f`` is not identically 0 (zero ``model.output.weight`` to
    match them; the limit direction does not depend on it). Their bias is a constant input
    coordinate; ``bias="first"`` is the equivalent learned bias ``<a_j, x> + c_j``.

    Order: ``k + 1`` with ``train="both"`` for an activation of degree ``k``; 1 with
    ``train="output"`` (the frozen first layer makes ``f`` linear in ``b``, for any
    activation and any bias mode, since the output bias is then also of order 1).

    Parameters
    ----------
    input_dim : int
        ``d`` (after flattening).
    width : int
        ``m``, the number of hidden units.
    n_outputs : int
        Output width.
    activation : str
        A name from :data:`marginlab.models.activations.ACTIVATIONS`.
    train : {"both", "output"}
        ``"output"`` freezes the first layer (``requires_grad=False``).
    bias : {"none", "first", "all"}
        Which layers have a bias.
    seed : int
        Seed of the weight draw.
    **activation_kw
        Parameters of the activation.

    Examples
    --------
    >>> TwoLayer(3, 10).homogeneity_order, TwoLayer(3, 10, train="output").homogeneity_order
    (2.0, 1.0)
    """

    def __init__(
        self,
        input_dim: int,
        width: int,
        n_outputs: int = 1,
        *,
        activation: str = "relu",
        train: str = "both",
        bias: str = "none",
        seed: int = 0,
        **activation_kw: Any,
    ) -> None:
        _checks.positive_int("input_dim", input_dim)
        _checks.positive_int("width", width)
        _checks.positive_int("n_outputs", n_outputs)
        _checks.choice("train", train, TRAIN_MODES)
        _checks.choice("bias", bias, BIAS_MODES)
        generator = torch.Generator().manual_seed(_checks.seed(seed))
        act = make_activation(activation, **activation_kw)
        hidden = dense(
            input_dim, width, bias=bias != "none", generator=generator, init=_standard_normal_
        )
        output = dense(
            width, n_outputs, bias=bias == "all", generator=generator, init=_standard_normal_
        )
        hidden.requires_grad_(train == "both")
        layers: list[tuple[str, nn.Module]] = [
            ("flatten", nn.Flatten()),
            ("hidden", hidden),
            ("act", act),
            ("mean", Scale(1.0 / width)),
            ("output", output),
        ]
        summary = f"two_layer {input_dim}-{width}-{n_outputs} train={train} | bias={bias}"
        super().__init__(layers, f"{summary} | {act.label}", n_outputs)

    @property
    def output(self) -> nn.Linear:
        """The output layer (``b``; its bias is ``c`` with ``bias="all"``)."""
        return self.body.output
