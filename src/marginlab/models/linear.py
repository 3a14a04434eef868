"""Linear predictors: plain, deep (a product of matrices) and diagonal (``u^D - v^D``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import torch
from torch import nn

from marginlab.models import _checks
from marginlab.models._stack import build_stack, fc_tokens
from marginlab.models.base import HomogeneousNet, LayerGroup, SequentialNet
from marginlab.models.init import lecun_normal_


class DeepLinear(SequentialNet):
    """``f(x) = W_L ... W_1 x``: a deep linear net, homogeneous of order ``L`` (the depth).

    Weights are LeCun-normal (truncated, std ``sqrt(1/fan_in)``), which keeps the product
    ``O(1)`` at any depth. Give either ``hidden`` or ``depth`` (number of matrices) with
    ``width``.

    Parameters
    ----------
    input_dim : int
        Number of input features (after flattening).
    hidden : sequence of int, optional
        Hidden widths.
    n_outputs : int
        Output width.
    depth, width : int, optional
        ``depth`` matrices with ``depth - 1`` hidden layers of ``width`` units.
    seed : int
        Seed of the weight draw.

    Examples
    --------
    >>> net = DeepLinear(5, depth=3, width=4)
    >>> net.homogeneity_order, tuple(net.end_to_end().shape)
    (3.0, (1, 5))
    """

    kind = "deep_linear"

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int] | None = None,
        n_outputs: int = 1,
        *,
        depth: int | None = None,
        width: int | None = None,
        seed: int = 0,
    ) -> None:
        _checks.positive_int("input_dim", input_dim)
        _checks.positive_int("n_outputs", n_outputs)
        if hidden is None:
            if depth is None:
                raise ValueError("give either hidden or depth (with width when depth > 1)")
            depth = _checks.positive_int("depth", depth)
            hidden = [_checks.positive_int("width", width)] * (depth - 1) if depth > 1 else []
        elif depth is not None or width is not None:
            raise ValueError(
                f"give either hidden or depth/width, not both (hidden={hidden!r}, "
                f"depth={depth!r}, width={width!r})"
            )
        hidden = _checks.positive_ints("hidden", hidden)
        layers, _ = build_stack(
            fc_tokens([*hidden, n_outputs]),
            (input_dim,),
            activation="identity",
            activation_kw={},
            bias="none",
            seed=seed,
            init=lecun_normal_,
        )
        arch = "-".join(map(str, [input_dim, *hidden, n_outputs]))
        super().__init__(layers, f"{self.kind} {arch} | bias=none | identity", n_outputs)

    def end_to_end(self) -> torch.Tensor:
        """Return the product ``W_L ... W_1``, shape ``(n_outputs, input_dim)``."""
        weights = [m.weight for m in self.body if isinstance(m, nn.Linear)]
        return reduce(lambda product, weight: weight @ product, weights)


class Linear(DeepLinear):
    """``f(x) = W x`` without bias, order 1 (a :class:`DeepLinear` of depth 1).

    Examples
    --------
    >>> Linear(3).homogeneity_order
    1.0
    """

    kind = "linear"

    def __init__(self, input_dim: int, n_outputs: int = 1, *, seed: int = 0) -> None:
        super().__init__(input_dim, [], n_outputs, seed=seed)


class DiagonalLinear(HomogeneousNet):
    """``f(x) = <u^D - v^D, x>`` with elementwise powers: a depth-``D`` diagonal linear net.

    For even ``D`` this is the diagonal network of Woodworth et al. (2020). Both ``u`` and
    ``v`` start at ``init_scale * 1``, so the predictor starts at exactly 0 and ``init_scale``
    interpolates between the kernel (large) and rich (small) regimes. The init is
    deterministic; ``seed`` is accepted so every zoo constructor takes one.

    Parameters
    ----------
    input_dim : int
        ``d``, the length of ``u``, ``v`` and the flattened input.
    depth : int
        ``D``, the homogeneity order.
    init_scale : float
        Initial value of every entry of ``u`` and ``v``.
    seed : int
        Unused (deterministic init).

    Examples
    --------
    >>> net = DiagonalLinear(3, depth=2, init_scale=0.5)
    >>> net.end_to_end().tolist(), net.homogeneity_order
    ([0.0, 0.0, 0.0], 2.0)
    """

    def __init__(
        self, input_dim: int, depth: int = 2, *, init_scale: float = 0.1, seed: int = 0
    ) -> None:
        _checks.positive_int("input_dim", input_dim)
        _checks.positive_int("depth", depth)
        _checks.positive_float("init_scale", init_scale)
        _checks.seed(seed)
        super().__init__(
            f"diagonal_linear d={input_dim} depth={depth} init_scale={init_scale:g} "
            "| bias=none | identity",
            1,
        )
        self.depth = depth
        self.u = nn.Parameter(torch.full((input_dim,), float(init_scale)))
        self.v = nn.Parameter(torch.full((input_dim,), float(init_scale)))

    def end_to_end(self) -> torch.Tensor:
        """Return the effective linear predictor ``u^D - v^D``, shape ``(input_dim,)``."""
        return self.u**self.depth - self.v**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.end_to_end().unsqueeze(1)

    @property
    def homogeneity_order(self) -> float | None:
        # Scaling only u (or only v) is not homogeneous, so (u, v) is one group of degree D;
        # freezing one of them breaks homogeneity.
        if self.u.requires_grad != self.v.requires_grad:
            return None
        return float(self.depth) if self.u.requires_grad else 0.0

    def layer_groups(self) -> list[LayerGroup]:
        params = tuple(p for p in (self.u, self.v) if p.requires_grad)
        return [LayerGroup("uv", params, float(self.depth))] if params else []
