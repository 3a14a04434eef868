"""The network of Chizat & Bach's reference code, as :func:`marginlab.fit` trains it.

``f(x) = (1/m) sum_j b_j relu(<a_j, x>)`` with the reference code's backward pass; the
reproductions of the paper's Fig. 2 (:mod:`~marginlab.experiments.papers.chizat_bach`) and
Fig. 3 (:mod:`~marginlab.experiments.papers.chizat_bach_fig3`) both train it.
"""

from __future__ import annotations

import torch
from torch import nn

from marginlab.models.base import LayerGroup


class _MeanField(torch.autograd.Function):
    """``(1/m) relu(x a^T) b`` with the reference code's backward pass.

    The input-layer gradient is formed as ``x^T (relu'(z) g)``, a ``(d, m)`` product whose
    long axis stays contiguous, then scaled by ``b``; autograd's generic path forms it as
    ``(m, n) x (n, d)`` after an ``(n, m)`` outer product and takes about twice as long.
    ``relu'(0) = 0``, as in the reference code and in torch.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        act = (x @ a.T).clamp_min_(0.0)
        ctx.save_for_backward(x, act, b)
        return (act @ b[0])[:, None] / a.shape[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor | None, torch.Tensor | None]:
        x, act, b = ctx.saved_tensors
        py = grad[:, 0] / act.shape[1]
        grad_a = grad_b = None
        if ctx.needs_input_grad[1]:
            slopes = torch.sign(act).mul_(py[:, None])
            grad_a = b[0][:, None] * (x.T @ slopes).T
        if ctx.needs_input_grad[2]:
            grad_b = (act.T @ py)[None]
        return None, grad_a, grad_b


class MeanFieldNet(nn.Module):
    """``f(x) = (1/m) sum_j b_j relu(<a_j, x>)``: :class:`TwoLayer`'s network as it trains here,
    with the reference code's gradient (:class:`_MeanField`).

    ``hidden`` holds ``a`` (``(m, d)``) and ``output`` holds ``b`` (``(1, m)``), as in
    :class:`TwoLayer`. With ``train="output"`` the first layer is frozen and ``f`` is linear
    in ``b``.

    Examples
    --------
    >>> net = MeanFieldNet(torch.ones(3, 2), torch.ones(3), "both")
    >>> net(torch.tensor([[1.0, -0.5]])).tolist(), net.homogeneity_order
    ([[0.5]], 2.0)
    """

    def __init__(self, first: torch.Tensor, second: torch.Tensor, train: str) -> None:
        super().__init__()
        self.hidden = nn.Linear(*first.shape[::-1], bias=False, dtype=first.dtype)
        self.output = nn.Linear(first.shape[0], 1, bias=False, dtype=first.dtype)
        with torch.no_grad():
            self.hidden.weight.copy_(first)
            self.output.weight.copy_(second[None])
        self.hidden.requires_grad_(train == "both")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MeanField.apply(x, self.hidden.weight, self.output.weight)

    @property
    def homogeneity_order(self) -> float:
        return 2.0 if self.hidden.weight.requires_grad else 1.0

    def layer_groups(self) -> list[LayerGroup]:
        layers = [("hidden", self.hidden), ("output", self.output)]
        return [
            LayerGroup(name, (layer.weight,), 1.0)
            for name, layer in layers
            if layer.weight.requires_grad
        ]
