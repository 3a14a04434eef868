"""The gradient of the log of the mean loss, ``grad log L``: O(1) at any loss level.

``grad log L`` is a softmax-weighted average of per-sample gradients, so it never
underflows even when ``L`` is 1e-1000. Large batches are forwarded in chunks; the chunk
gradients are merged in log space, so memory is bounded by one chunk's activations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from marginlab.losses import Loss
from marginlab.measure.margins import pairwise_margins


def log_loss_and_grad(
    model: nn.Module,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    chunk_size: int = 4096,
) -> tuple[float, list[torch.Tensor]]:
    """Return ``log L`` (mean loss over ``x``) and ``grad log L`` with respect to ``params``.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    params : list of torch.Tensor
        The parameters to differentiate (the trainable ones).
    x, y : torch.Tensor
        A batch (or the whole training set) and its class indices.
    loss : Loss
        The loss, evaluated in log space.
    chunk_size : int
        Largest number of samples forwarded at once.

    Returns
    -------
    log_loss : float
        Natural log of the mean loss over ``x``.
    grads : list of torch.Tensor
        ``grad log L``; the gradient of the mean loss is ``exp(log_loss) * grads``.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[500.0, 0.0]]))
    >>> x, y = torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=torch.float64), torch.tensor([1, 0])
    >>> log_loss, (grad,) = log_loss_and_grad(model, [model.weight], x, y, get_loss("exponential"))
    >>> round(log_loss, 6), grad.tolist()
    (-500.693147, [[-1.0, 0.0]])
    """
    log_sum = -math.inf
    grads: list[torch.Tensor] | None = None
    for start in range(0, len(x), chunk_size):
        margins = pairwise_margins(
            model(x[start : start + chunk_size]), y[start : start + chunk_size]
        )
        chunk_log_sum = torch.logsumexp(loss.log_per_sample(margins), dim=0)
        chunk_grads = torch.autograd.grad(chunk_log_sum, params)
        value = float(chunk_log_sum.detach())
        if grads is None:
            grads, log_sum = list(chunk_grads), value
            continue
        merged = float(torch.logaddexp(torch.tensor(log_sum), torch.tensor(value)))
        old_weight, new_weight = math.exp(log_sum - merged), math.exp(value - merged)
        torch._foreach_mul_(grads, old_weight)
        torch._foreach_add_(grads, chunk_grads, alpha=new_weight)
        log_sum = merged
    assert grads is not None, "empty batch"
    return log_sum - math.log(len(x)), grads
