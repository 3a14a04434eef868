"""The reproductions' own training loops as they were before they trained with ``fit``.

Kept as the baselines of ``bench_engine_vs_loops.py``: each is the loop its paper module
ran, unchanged but for its return value. They are not used by marginlab itself.

Example
-------
>>> x = torch.tensor([[[1.0, 0.5], [1.0, -0.5]]], dtype=torch.float64)
>>> a, b, margins = chizat_bach_loop(x, torch.tensor([[1, 0]]), 20, niter=300)
>>> bool(margins[-1, 0] > 0)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from marginlab.experiments.papers.chizat_bach import PAPER_STEPSIZE, step_sizes
from marginlab.models.two_layer import TwoLayer


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
