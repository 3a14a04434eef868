"""Observers: measurements too costly for every logged epoch, switched on in a config.

``log.observers: [{name: alignment, every: 100}]`` runs :func:`alignment` every 100 epochs
and adds its values to that metrics row. An observer is a plain function
``(model, x, y, loss, row, **options) -> dict`` where ``row`` is the metrics row being
written (loss, norms, accumulated learning rate ...), registered in :data:`OBSERVERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from marginlab.losses import Loss
from marginlab.measure.gradient import log_loss_and_grad
from marginlab.measure.kkt import kkt_observer
from marginlab.measure.margins import trainable_parameters
from marginlab.measure.rates import rates_observer


def alignment(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss, chunk_size: int = 4096
) -> float:
    """Return ``beta = cos(theta, -grad L)`` on the full batch (Lyu & Li, App. C.2).

    Computed from ``grad log L``, which has the direction of ``grad L`` at any loss level.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[5.0, 0.0]]))
    >>> x, y = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64), torch.tensor([1, 0])
    >>> round(alignment(model, x, y, get_loss("logistic")), 12)
    1.0
    """
    params = trainable_parameters(model)
    _, grads = log_loss_and_grad(model, params, x, y, loss, chunk_size)
    inner = sum(float((p.detach() * -g).sum()) for p, g in zip(params, grads, strict=True))
    norm_theta = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in params))
    norm_grad = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
    return inner / (norm_theta * norm_grad)


def _alignment_observer(model, x, y, loss, row, chunk_size: int = 4096) -> dict:
    beta = alignment(model, x, y, loss, chunk_size)
    return {"alignment": beta, "one_minus_alignment": 1.0 - beta}


OBSERVERS: dict[str, Callable[..., dict]] = {
    "alignment": _alignment_observer,
    "kkt": kkt_observer,
    "rates": rates_observer,
}


def run_observer(
    name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss, row: dict, **options
) -> dict:
    """Run the observer called ``name``; an unknown name lists the known ones."""
    if name not in OBSERVERS:
        raise ValueError(
            f"log.observers: unknown observer {name!r}; expected one of {sorted(OBSERVERS)}"
        )
    return OBSERVERS[name](model, x, y, loss, row, **options)
