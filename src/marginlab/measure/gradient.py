"""The gradient of the log of the mean loss, ``grad log L``: O(1) at any loss level.

``grad log L`` is a softmax-weighted average of per-sample gradients, so it never
underflows even when ``L`` is 1e-1000. Large batches are forwarded in chunks; the chunk
gradients are merged in log space, so memory is bounded by one chunk's activations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from marginlab.losses import Loss
from marginlab.measure.margins import Evaluation, chunk_evaluation, pairwise_margins
from marginlab.numerics import log_softplus, logaddexp


class _LogLossSum(torch.autograd.Function):
    """``log sum_n l_n`` from the network's outputs, with its gradient in closed form.

    The value is ``logsumexp(loss.log_per_sample(pairwise_margins(outputs, y)))``. Built
    from those pieces, autograd records some forty small operations per batch; on the small
    batches of SGD they cost more than the network's own backward pass.

    With ``u_n = log sum_j exp(-s_nj)`` and ``w_n = l_n / L``, the gradient is
    ``w_n (d log l / du)(u_n)`` times ``du_n / d outputs``, a softmax over the wrong classes
    minus one at the true class (``-sign`` for a binary output).
    """

    @staticmethod
    def forward(ctx, outputs: torch.Tensor, y: torch.Tensor, exponential: bool) -> torch.Tensor:
        out = outputs.double()
        if out.shape[1] == 1:
            # u = -s = -(2y - 1) f
            u = (1.0 - 2.0 * y.to(out.dtype)) * out[:, 0]
            wrong_softmax = None
        else:
            true_class = y.unsqueeze(1)
            neg_margins = (out - out.gather(1, true_class)).scatter_(1, true_class, -math.inf)
            u = torch.logsumexp(neg_margins, dim=1)
            wrong_softmax = torch.exp(neg_margins - u.unsqueeze(1))
        log_losses = u if exponential else log_softplus(u)
        total = torch.logsumexp(log_losses, dim=0)
        # w_n * d log l / du: exp(log l_n - log L) * sigmoid(u) / softplus(u) for logistic
        weight = torch.exp((u if exponential else F.logsigmoid(u)) - total)
        ctx.save_for_backward(weight, wrong_softmax, y)
        ctx.output_dtype = outputs.dtype
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        weight, wrong_softmax, y = ctx.saved_tensors
        scale = grad_total * weight
        if wrong_softmax is None:
            grad = ((1.0 - 2.0 * y.to(scale.dtype)) * scale).unsqueeze(1)
        else:
            grad = wrong_softmax * scale.unsqueeze(1)
            grad.scatter_(1, y.unsqueeze(1), -scale.unsqueeze(1))
        return grad.to(ctx.output_dtype), None, None


def log_loss_sum(outputs: torch.Tensor, y: torch.Tensor, loss: Loss) -> torch.Tensor:
    """Return ``log sum_n l_n`` (a float64 scalar), differentiable with respect to ``outputs``.

    Equal to ``torch.logsumexp(loss.log_per_sample(pairwise_margins(outputs, y)), 0)``, with
    a backward pass of a few operations instead of one per step of that formula.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(N, C)`` logits, or ``(N, 1)`` for a binary model.
    y : torch.Tensor
        ``(N,)`` class indices.
    loss : Loss
        The loss.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> outputs = torch.tensor([[700.0, 0.0]], dtype=torch.float64, requires_grad=True)
    >>> value = log_loss_sum(outputs, torch.tensor([0]), get_loss("cross_entropy"))
    >>> round(value.item(), 6), torch.autograd.grad(value, outputs)[0].tolist()
    (-700.0, [[-1.0, 1.0]])
    """
    return _LogLossSum.apply(outputs, y, loss.name == "exponential")


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
    return _merged_log_loss_and_grad(model, params, x, y, loss, chunk_size)


def evaluation_and_grad(
    model: nn.Module,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    chunk_size: int = 4096,
) -> tuple[Evaluation, float, list[torch.Tensor]]:
    """The evaluation of ``x`` (as :func:`~marginlab.measure.margins.evaluate`) together with
    :func:`log_loss_and_grad`, from one forward pass.

    Both parts equal those functions' results bit for bit: the same forward pass, read twice.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[500.0, 0.0]]))
    >>> x, y = torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=torch.float64), torch.tensor([1, 0])
    >>> evaluation, log_loss, (grad,) = evaluation_and_grad(
    ...     model, [model.weight], x, y, get_loss("exponential"))
    >>> evaluation.margins.tolist(), round(log_loss, 6), grad.tolist()
    ([500.0, 1000.0], -500.693147, [[-1.0, 0.0]])
    """
    chunks: list[Evaluation] = []

    def read(
        outputs: torch.Tensor, y_chunk: torch.Tensor, evaluation: Evaluation | None = None
    ) -> None:
        chunks.append(evaluation or chunk_evaluation(outputs, y_chunk, loss))

    log_loss, grads = _merged_log_loss_and_grad(model, params, x, y, loss, chunk_size, read)
    return Evaluation.concatenate(chunks), log_loss, grads


def grouped_log_loss_sums(
    outputs: torch.Tensor, y: torch.Tensor, loss: Loss
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample log losses, sample margins, ``log sum_n l_n`` of each group and the
    gradient of those sums with respect to ``outputs``, for ``K`` groups (replicas) of ``n``
    samples at once, with no autograd graph.

    The gradient is in closed form, as in :func:`log_loss_sum`: with
    ``u_n = log sum_j exp(-s_nj)`` and ``w_n = exp(log l'(u_n) - log L_k)``, ``d log L_k / d
    outputs`` is ``w_n`` times a softmax over the wrong classes, minus ``w_n`` at the true
    class (``-sign_n w_n`` for a one-output model). Group ``k``'s sum depends only on its
    own rows, so one backward pass of ``outputs`` with this gradient gives every group its
    own ``grad log L_k``.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(K, n, C)`` logits, or ``(K, n, 1)`` for a binary model.
    y : torch.Tensor
        ``(K, n)`` class indices.
    loss : Loss
        The loss.

    Returns
    -------
    log_losses : torch.Tensor
        ``(K, n)`` float64 ``log l_n``, as :meth:`~marginlab.losses.Loss.log_per_sample`.
    margins : torch.Tensor
        ``(K, n)`` float64 sample margins ``min_j s_nj``.
    log_sums : torch.Tensor
        ``(K,)`` float64 ``log sum_n l_n`` of each group.
    grad_outputs : torch.Tensor
        ``d sum_k log sum_n l_n / d outputs``, shaped and typed as ``outputs``.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> outputs = torch.tensor([[[700.0, 0.0]], [[0.0, 0.0]]], dtype=torch.float64)
    >>> _, _, sums, grad = grouped_log_loss_sums(outputs, torch.tensor([[0], [1]]),
    ...     get_loss("exponential"))
    >>> sums.tolist(), grad.tolist()
    ([-700.0, 0.0], [[[-1.0, 1.0]], [[1.0, -1.0]]])
    """
    count, n, classes = outputs.shape
    flat_y = y.reshape(-1)
    margins = pairwise_margins(outputs.detach().reshape(count * n, classes), flat_y)
    log_losses = loss.log_per_sample(margins)
    log_sums = torch.logsumexp(log_losses.view(count, n), dim=1)
    if classes == 1:
        u = -margins[:, 0]
    else:
        u = torch.logsumexp(-margins, dim=1)
    log_slope = u if loss.name == "exponential" else F.logsigmoid(u)
    weight = torch.exp(log_slope - log_sums.repeat_interleave(n))
    if classes == 1:
        grad = ((1.0 - 2.0 * flat_y.to(weight.dtype)) * weight).unsqueeze(1)
    else:
        # the wrong classes' columns of pairwise_margins, put back in place
        columns = torch.arange(classes - 1, device=outputs.device).unsqueeze(0)
        others = columns + (columns >= flat_y.unsqueeze(1)).long()
        grad = torch.zeros(count * n, classes, dtype=weight.dtype, device=weight.device)
        grad.scatter_(1, others, torch.exp(-margins - u.unsqueeze(1)) * weight.unsqueeze(1))
        grad.scatter_(1, flat_y.unsqueeze(1), -weight.unsqueeze(1))
    return (
        log_losses.view(count, n),
        margins.amin(dim=1).view(count, n),
        log_sums,
        grad.view(count, n, classes).to(outputs.dtype),
    )


def _binary_log_sum_and_grad(
    outputs: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    params: list[torch.Tensor],
    read_outputs: Callable[..., object] | None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``log sum_n l_n`` of a one-output model and its gradient, from the same per-sample
    log losses as its evaluation (:func:`~marginlab.measure.margins.chunk_evaluation`).

    With ``s_n = sign_n f_n`` and ``u_n = -s_n``, ``d log L / d f_n = -sign_n w_n`` where
    ``w_n = exp(u_n - log L)`` for the exponential loss and ``exp(log sigmoid(u_n) - log L)``
    for the logistic one; the network's backward pass takes it from there. Only a handful of
    operations on ``N`` numbers: on a small network they are much of a step.
    """
    # pairwise_margins of a one-output model, with the signs kept for the gradient
    sign = 2.0 * y.to(torch.float64) - 1.0
    margins = (sign * outputs.detach()[:, 0].double()).unsqueeze(1)
    log_losses = loss.log_per_sample(margins)
    total = torch.logsumexp(log_losses, dim=0)
    if read_outputs is not None:
        evaluation = Evaluation.with_log_loss_sum(log_losses, margins.amin(dim=1), float(total))
        read_outputs(outputs, y, evaluation)
    u = -margins[:, 0]
    weight = torch.exp((u if loss.name == "exponential" else F.logsigmoid(u)) - total)
    grad_outputs = (-sign * weight).to(outputs.dtype).unsqueeze(1)
    return total, torch.autograd.grad(outputs, params, grad_outputs)


def _merged_log_loss_and_grad(
    model: nn.Module,
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    chunk_size: int,
    read_outputs: Callable[..., object] | None = None,
) -> tuple[float, list[torch.Tensor]]:
    log_sum = -math.inf
    grads: list[torch.Tensor] | None = None
    for start in range(0, len(x), chunk_size):
        outputs, y_chunk = model(x[start : start + chunk_size]), y[start : start + chunk_size]
        if outputs.shape[1] == 1:
            chunk_log_sum, chunk_grads = _binary_log_sum_and_grad(
                outputs, y_chunk, loss, params, read_outputs
            )
        else:
            if read_outputs is not None:
                read_outputs(outputs, y_chunk)
            chunk_log_sum = log_loss_sum(outputs, y_chunk, loss)
            chunk_grads = torch.autograd.grad(chunk_log_sum, params)
        value = float(chunk_log_sum.detach())
        if grads is None:
            grads, log_sum = list(chunk_grads), value
            continue
        merged = logaddexp(log_sum, value)
        old_weight, new_weight = math.exp(log_sum - merged), math.exp(value - merged)
        torch._foreach_mul_(grads, old_weight)
        torch._foreach_add_(grads, chunk_grads, alpha=new_weight)
        log_sum = merged
    assert grads is not None, "empty batch"
    return log_sum - math.log(len(x)), grads
