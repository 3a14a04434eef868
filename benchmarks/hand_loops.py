"""The reproductions' own training loops as they were before they trained with ``fit``.

Kept as the baselines of ``bench_engine_vs_loops.py`` (and, for Cai et al., of the test that
the port gives the same runs): each is the loop its paper module ran, unchanged but for its
return value. They are not used by marginlab itself.

Examples
--------
>>> x = torch.tensor([[[1.0, 0.5], [1.0, -0.5]]], dtype=torch.float64)
>>> a, b, margins = chizat_bach_loop(x, torch.tensor([[1, 0]]), 20, niter=300)
>>> bool(margins[-1, 0] > 0)
True
>>> from marginlab.experiments.papers.cai import five_points
>>> x, y = five_points()
>>> loop = cai_loop(x, y, torch.zeros(2, 2, 3, dtype=torch.float64), [1.0, 3.0], 20)
>>> loop.log_loss.shape, bool((loop.log_loss[-1] < loop.log_loss[0]).all())
((21, 2), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call, vmap

from marginlab.experiments.papers.cai import LEAKY_C, output_signs
from marginlab.experiments.papers.chizat_bach import PAPER_STEPSIZE
from marginlab.losses import get_loss
from marginlab.measure.references.vardi import Construction
from marginlab.models.two_layer import TwoLayer
from marginlab.numerics import log_softplus


def step_sizes(stepsize: float, niter: int) -> np.ndarray:
    """The reference notebook's schedule ``eta_t = stepsize / sqrt(t + 1)``, ``t = 1..niter``
    (the former loop's; the reproduction's fit uses :class:`~marginlab.InverseSqrt`).

    Examples
    --------
    >>> step_sizes(0.5, 3).round(4).tolist()
    [0.3536, 0.2887, 0.25]
    """
    return stepsize / np.sqrt(np.arange(2, niter + 2, dtype=np.float64))


def chizat_bach_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    width: int,
    *,
    train: str = "both",
    stepsize: float = PAPER_STEPSIZE,
    niter: int = 1000,
    seeds: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Chizat & Bach's reference update, batched over replicas (``x``: ``(R, n, d)``);
    returns the input weights, output weights and the margin before each step."""
    if train not in ("both", "output"):
        raise ValueError(f"train: expected 'both' or 'output', got {train!r}")
    x = x.to(dtype)
    signs = 2.0 * y.to(dtype) - 1.0
    replicas, _, d = x.shape
    seeds = list(range(replicas)) if seeds is None else list(seeds)
    # The initial draw is TwoLayer's own (N(0, 1) entries), so a replica is that model.
    inits = [TwoLayer(d, width, seed=s).double() for s in seeds]
    a = torch.stack([net.body.hidden.weight.detach() for net in inits]).to(dtype)
    b = torch.stack([net.output.weight.detach()[0] for net in inits]).to(dtype)
    if train == "output":
        b.zero_()
    margins = np.empty((niter, replicas))
    for t, eta in enumerate(step_sizes(stepsize, niter)):
        z = torch.bmm(x, a.transpose(1, 2))  # (R, n, m)
        act = z.clamp_min(0.0)
        q = signs * torch.bmm(act, b[:, :, None])[:, :, 0] / width
        q_min = q.min(dim=1, keepdim=True).values
        # Soft-min weights, shifted by the minimum so no exponential overflows.
        p = torch.exp(q_min - q)
        py = p * signs / p.sum(dim=1, keepdim=True)
        grad_b = torch.bmm(act.transpose(1, 2), py[:, :, None])[:, :, 0]
        if train == "both":
            size = (a.pow(2).sum((1, 2)) + b.pow(2).sum(1)) / width
            margins[t] = (q_min[:, 0] / size).numpy()
            # relu'(0) = 0, as in the reference code: sign(relu(z)) is the derivative. The
            # product is formed as (d, m) so that the long axis stays contiguous.
            slopes = torch.sign(act).mul_(py[:, :, None])
            grad_a = b[:, :, None] * torch.bmm(x.transpose(1, 2), slopes).transpose(1, 2)
            a += eta * grad_a
            b += eta * grad_b
        else:
            norm = b.norm(dim=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                margins[t] = (q_min[:, 0] / (norm / width)).numpy()
            beta = torch.clamp(norm / math.sqrt(width), min=1.0)
            b += (beta * eta)[:, None] * grad_b
    return a, b, margins


LOGISTIC = get_loss("logistic")


def vardi_loop(
    item: Construction,
    theta0: torch.Tensor,
    *,
    plain_steps: int = 500,
    log_steps: int = 2000,
    lr: float = 0.2,
    eta: float = 0.05,
    decay: float = 100.0,
) -> torch.Tensor:
    """Gradient descent from each row of ``theta0`` on the construction's data.

    Phase 1: ``plain_steps`` of ``theta -= lr * grad L`` (mean logistic loss). Phase 2:
    ``log_steps`` of ``theta -= eta_k ||theta|| g / ||g||`` with ``g = grad log L`` and
    ``eta_k = eta / (1 + k / decay)``: the same descent direction as gradient flow, at a
    relative step that shrinks so the direction settles instead of oscillating between the
    active constraints.

    Parameters
    ----------
    item : Construction
        Gives the model (its architecture) and the data.
    theta0 : torch.Tensor
        ``(S, P)`` initial parameters, one row per seed.
    plain_steps, log_steps, lr, eta, decay
        The schedule above.

    Returns
    -------
    torch.Tensor
        ``(S, P)`` final parameters.
    """
    named = list(item.model.named_parameters())
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    sign = 2.0 * item.y.double() - 1.0

    def log_loss(theta: torch.Tensor) -> torch.Tensor:
        params = {
            n: p.reshape(s)
            for n, p, s in zip(names, torch.split(theta, sizes), shapes, strict=True)
        }
        q = sign * functional_call(item.model, params, (item.x,)).reshape(-1)
        return torch.logsumexp(LOGISTIC.log_per_sample(q[:, None]), 0) - math.log(len(q))

    batched = vmap(log_loss)
    theta = theta0.detach().double().clone()
    for k in range(plain_steps + log_steps):
        leaf = theta.clone().requires_grad_(True)
        log_l = batched(leaf)
        if k < plain_steps:
            # seeds are independent, so the gradient of the sum is each seed's own gradient
            (grad,) = torch.autograd.grad(log_l.exp().sum(), leaf)
            theta = theta - lr * grad
        else:
            (grad,) = torch.autograd.grad(log_l.sum(), leaf)
            step = eta / (1.0 + (k - plain_steps) / decay)
            length = grad.norm(dim=1, keepdim=True)
            # a seed with no gradient (every unit dead) stays where it is
            move = torch.where(length > 0, grad / length.clamp(min=1e-300), torch.zeros_like(grad))
            theta = theta - step * theta.norm(dim=1, keepdim=True) * move
    return theta.detach()


@dataclass
class CaiLoop:
    """What :func:`cai_loop` recorded: ``(T + 1, k)`` arrays, and with ``k = 1`` the
    snapshots (their ``log L`` and weights) and the per-neuron margins ``(T + 1, m)``."""

    log_loss: np.ndarray
    q_min: np.ndarray
    norm: np.ndarray
    snapshot_log_loss: list[float] = field(default_factory=list)
    snapshot_weights: list[torch.Tensor] = field(default_factory=list)
    neuron_margins: np.ndarray | None = None


def cai_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    etas: Sequence[float],
    steps: int,
    *,
    levels: Sequence[float] | None = None,
    neuron_margins: bool = False,
) -> CaiLoop:
    """Cai et al.'s constant-step full-batch GD on ``SignedTwoLayer``, ``k`` runs at once
    (``weights``: ``(k, m, d)``); with ``k = 1``, the weights the first time ``log L`` fell
    to each of ``levels`` and the per-neuron margins of every step."""
    sign = 2.0 * y.to(x.dtype) - 1.0
    k, width, _ = weights.shape
    a = output_signs(width, x.dtype)
    eta = torch.as_tensor(np.asarray(etas, dtype=float))
    w = weights.clone().requires_grad_()
    rows_loss, rows_q, rows_norm, neurons = [], [], [], []
    out = CaiLoop(np.empty(0), np.empty(0), np.empty(0))
    levels, next_level = list(levels or []), 0
    log_n = math.log(len(x))
    for t in range(steps + 1):
        z = torch.einsum("nd,kmd->knm", x, w)
        f = (LEAKY_C * z + (1.0 - LEAKY_C) * torch.nn.functional.softplus(z)) @ a / width
        q = sign * f
        log_sum = torch.logsumexp(log_softplus(-q), dim=1)
        log_loss = log_sum.detach() - log_n
        rows_loss.append(log_loss.numpy())
        rows_q.append(q.detach().min(1).values.numpy())
        rows_norm.append(w.detach().flatten(1).norm(dim=1).numpy())
        if neuron_margins:
            act = (LEAKY_C * z + (1.0 - LEAKY_C) * torch.nn.functional.softplus(z)).detach()[0]
            per = (sign[:, None] * a[None, :] * act).min(0).values
            norms = w.detach()[0].norm(dim=1)
            neurons.append(torch.where(norms > 0, per / norms, torch.nan).numpy())
        value = float(log_loss[0])
        if next_level < len(levels) and value <= levels[next_level]:
            out.snapshot_log_loss.append(value)
            out.snapshot_weights.append(w.detach()[0].clone())
            while next_level < len(levels) and value <= levels[next_level]:
                next_level += 1
        if t == steps:
            break
        (grad,) = torch.autograd.grad(log_sum.sum(), [w])
        with torch.no_grad():
            # grad L = L grad(log L) = exp(log L) * grad(log-sum); the 1/n is in log L
            w -= (eta * torch.exp(log_loss))[:, None, None] * grad
    out.log_loss, out.q_min, out.norm = (np.array(r) for r in (rows_loss, rows_q, rows_norm))
    out.neuron_margins = np.array(neurons) if neuron_margins else None
    return out
