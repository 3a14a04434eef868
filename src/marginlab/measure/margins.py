"""Margins of a classifier and their normalizations (Lyu & Li 2020, Sections 3-4).

Everything is a plain function of a model (or its outputs) and data, so it applies to a
network trained anywhere. Margins are formed in float64 from the model's outputs.

- pairwise margins ``s_nj = f_{y_n}(x_n) - f_j(x_n)`` for ``j != y_n``; a binary model with one
  output has the single margin ``s_n = y_n f(x_n)`` with ``y_n`` in {-1, +1};
- sample margin ``q_n = min_j s_nj``; data set margin ``q_min = min_n q_n``;
- normalized margin ``q_min / rho^L`` and ``q_min / prod_i ||w_i||^{k_i}``;
- smoothed margin ``l^{-1}(L_sum) / rho^L`` (defined once ``L_sum`` is below ``l(0)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from marginlab.losses import Loss, get_loss, log_sum

SUPPORT_DECADES = 7

# How tables, progress lines and plots name each margin of the metrics: by what it divides
# by, since the two normalizations differ by orders of magnitude (1e-13 against 3e-8 on the
# MNIST job). ``rho = ||theta||``; ``prod||W_i||`` is the product of the layer norms (each
# to its degree ``k_i``, 1 in a plain network).
RHO = "rho^L"
LAYERS = "prod||W_i||"
MARGIN_LABELS = {
    "normalized_margin": f"q_min/{RHO}",
    "normalized_margin_layers": f"q_min/{LAYERS}",
    "smoothed_margin": f"l^-1(L)/{RHO}",
    "smoothed_margin_layers": f"l^-1(L)/{LAYERS}",
}
# Lyu & Li plot q_min over the product of the layer norms (the first layer's bias counted
# with its layer): the margin to show where only one is shown.
PAPER_MARGIN = "normalized_margin_layers"


def margin_label(key: str) -> str:
    """The name of a margin column of the metrics in a table: what it is, what it divides
    by, and whether it is the quantity the paper plots.

    Examples
    --------
    >>> margin_label("smoothed_margin")
    'smoothed margin l^-1(L)/rho^L'
    >>> margin_label("normalized_margin_layers")
    'normalized margin q_min/prod||W_i|| (plotted by Lyu & Li)'
    """
    kind = key.partition("_")[0]
    paper = " (plotted by Lyu & Li)" if key == PAPER_MARGIN else ""
    return f"{kind} margin {MARGIN_LABELS[key]}{paper}"


def pairwise_margins(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the margins ``s_nj`` in float64, shape ``(N, C-1)``, or ``(N, 1)`` for binary.

    Differentiable, so it also serves training.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(N, C)`` logits, or ``(N, 1)`` for a binary model.
    y : torch.Tensor
        ``(N,)`` class indices (``0``/``1`` for a binary model).

    Examples
    --------
    >>> import torch
    >>> pairwise_margins(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])).tolist()
    [[1.5, 3.0]]
    """
    out = outputs.double()
    if out.shape[1] == 1:
        sign = 2.0 * y.to(out.dtype) - 1.0
        return (sign * out[:, 0]).unsqueeze(1)
    # column j of the others is class j, or j + 1 from the true class on; gathers, not masks,
    # so that the function also runs under vmap (ensembles)
    columns = torch.arange(out.shape[1] - 1, device=out.device).unsqueeze(0)
    others = out.gather(1, columns + (columns >= y.unsqueeze(1)).long())
    return out.gather(1, y.unsqueeze(1)) - others


@dataclass(frozen=True)
class Evaluation:
    """Per-sample results of one forward pass over a data set.

    Attributes
    ----------
    log_losses : torch.Tensor
        ``(N,)`` float64 ``log l_n``.
    margins : torch.Tensor
        ``(N,)`` float64 sample margins ``q_n`` (hard: ``min_j s_nj``).
    """

    log_losses: torch.Tensor
    margins: torch.Tensor

    # Cached: the engine reads them several times per step.
    @cached_property
    def log_loss_sum(self) -> float:
        return log_sum(self.log_losses)

    @cached_property
    def log_loss_mean(self) -> float:
        # as log_mean(self.log_losses), from the cached sum
        return self.log_loss_sum - math.log(self.log_losses.numel())

    @property
    def q_min(self) -> float:
        return float(self.margins.min())

    @property
    def accuracy(self) -> float:
        return float((self.margins > 0).double().mean())

    @classmethod
    def with_log_loss_sum(
        cls, log_losses: torch.Tensor, margins: torch.Tensor, log_loss_sum: float
    ) -> Evaluation:
        """An evaluation whose ``log_loss_sum`` is already known (computed as
        :func:`~marginlab.losses.log_sum` computes it)."""
        evaluation = cls(log_losses, margins)
        evaluation.__dict__["log_loss_sum"] = log_loss_sum  # the cached property's value
        return evaluation

    @staticmethod
    def concatenate(chunks: list[Evaluation]) -> Evaluation:
        """One evaluation of consecutive chunks of a data set."""
        if len(chunks) == 1:
            return chunks[0]
        return Evaluation(
            torch.cat([c.log_losses for c in chunks]), torch.cat([c.margins for c in chunks])
        )


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss, chunk_size: int = 4096
) -> Evaluation:
    """Forward ``x`` in chunks and return per-sample log losses and margins.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> x, y = torch.randn(5, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1])
    >>> evaluate(model, x, y, get_loss("logistic")).margins.shape
    torch.Size([5])
    """
    chunks = [
        chunk_evaluation(model(x[start : start + chunk_size]), y[start : start + chunk_size], loss)
        for start in range(0, len(x), chunk_size)
    ]
    return Evaluation.concatenate(chunks)


def chunk_evaluation(outputs: torch.Tensor, y: torch.Tensor, loss: Loss) -> Evaluation:
    """The evaluation of one chunk of samples from the network's outputs on it.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> chunk_evaluation(torch.tensor([[2.0, 0.5]]), torch.tensor([0]),
    ...                  get_loss("exponential")).margins.tolist()
    [1.5]
    """
    s = pairwise_margins(outputs.detach(), y)
    return Evaluation(loss.log_per_sample(s), s.amin(dim=1))


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Return the parameters that gradient descent moves (``requires_grad``)."""
    return [p for p in model.parameters() if p.requires_grad]


def _norm(params: Iterable[torch.Tensor]) -> float:
    return math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params))


def parameter_norm(model: nn.Module) -> float:
    """Return ``rho = ||theta||_2`` over the trainable parameters.

    For a zoo model the norm runs over its layer groups (the reference convention, which
    leaves out the biases of later layers of an all-bias network).

    Examples
    --------
    >>> import torch
    >>> m = torch.nn.Linear(2, 1, bias=False)
    >>> _ = m.weight.data.copy_(torch.tensor([[3.0, 4.0]]))
    >>> parameter_norm(m)
    5.0
    """
    if hasattr(model, "layer_groups"):
        return _norm(p for group in model.layer_groups() for p in group.params)
    return _norm(trainable_parameters(model))


def layer_norms(model: nn.Module) -> list[float] | None:
    """Return ``||w_i||`` per layer group, or ``None`` for a model without layer groups."""
    if not hasattr(model, "layer_groups"):
        return None
    return [_norm(group.params) for group in model.layer_groups()]


def homogeneity_order(model: nn.Module, order: float | None = None) -> float | None:
    """Return the declared order: ``order`` if given, else ``model.homogeneity_order``."""
    if order is not None:
        return float(order)
    declared = getattr(model, "homogeneity_order", None)
    return None if declared is None else float(declared)


def _signed_ratio(numerator: float, log_denominator: float) -> float:
    """``numerator / exp(log_denominator)`` without overflowing the denominator."""
    if numerator == 0.0:
        return 0.0
    return math.copysign(math.exp(math.log(abs(numerator)) - log_denominator), numerator)


def margin_metrics(
    evaluation: Evaluation, model: nn.Module, loss: Loss, order: float | None = None
) -> dict[str, float | list | None]:
    """Return the margin quantities of one evaluation, keyed as in ``metrics.jsonl``.

    Homogeneous-only quantities (those that divide by ``rho^L``) are ``None`` when the model
    declares no order; the layer-normalized ones need layer groups.

    Parameters
    ----------
    evaluation : Evaluation
        Output of :func:`evaluate` on the training set.
    model : torch.nn.Module
        The model evaluated.
    loss : Loss
        The training loss (its inverse gives the smoothed margin).
    order : float, optional
        Homogeneity order; defaults to ``model.homogeneity_order``.

    Examples
    --------
    >>> import torch
    >>> from marginlab.losses import get_loss
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> x, y = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64), torch.tensor([1, 0])
    >>> _ = model.weight.data.copy_(torch.tensor([[2.0, 0.0]]))
    >>> loss = get_loss("logistic")
    >>> margin_metrics(evaluate(model, x, y, loss), model, loss, order=1)["normalized_margin"]
    1.0
    """
    order = homogeneity_order(model, order)
    q_min = evaluation.q_min
    log_loss_sum = evaluation.log_loss_sum
    rho = parameter_norm(model)
    norms = layer_norms(model)
    smoothed_numerator = (
        loss.inverse_from_log(log_loss_sum) if log_loss_sum < loss.log_threshold else None
    )

    normalized = smoothed = normalized_layers = smoothed_layers = None
    if order is not None and rho > 0:
        log_rho_l = order * math.log(rho)
        normalized = _signed_ratio(q_min, log_rho_l)
        if smoothed_numerator is not None:
            smoothed = _signed_ratio(smoothed_numerator, log_rho_l)
    if norms is not None and all(n > 0 for n in norms):
        degrees = [group.degree for group in model.layer_groups()]
        log_product = sum(k * math.log(n) for k, n in zip(degrees, norms, strict=True))
        normalized_layers = _signed_ratio(q_min, log_product)
        if smoothed_numerator is not None and order is not None:
            smoothed_layers = _signed_ratio(smoothed_numerator, log_product)

    support = [
        int((evaluation.margins < q_min + k * math.log(10.0)).sum())
        for k in range(1, SUPPORT_DECADES + 1)
    ]
    return {
        "q_min": q_min,
        "normalized_margin": normalized,
        "normalized_margin_layers": normalized_layers,
        "smoothed_margin": smoothed,
        "smoothed_margin_layers": smoothed_layers,
        "param_norm": rho,
        "layer_norms": norms,
        "support_counts": support,
    }


def normalized_margin(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    order: float | None = None,
    chunk_size: int = 4096,
) -> float:
    """Return ``q_min / rho^L`` of ``model`` on ``(x, y)``.

    Parameters
    ----------
    model : torch.nn.Module
        A homogeneous model; ``order`` defaults to ``model.homogeneity_order``.
    x, y : torch.Tensor
        Inputs and class indices.
    order : float, optional
        Homogeneity order ``L`` (required for a model that does not declare one).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[3.0, 4.0]]))
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> round(normalized_margin(model, x, torch.tensor([1]), order=1), 12)
    0.6
    """
    order = homogeneity_order(model, order)
    if order is None:
        raise ValueError(
            "order: the model declares no homogeneity order; pass order=L "
            "(marginlab.models.check_homogeneity measures it)"
        )
    evaluation = evaluate(model, x, y, get_loss("exponential"), chunk_size)
    return _signed_ratio(evaluation.q_min, order * math.log(parameter_norm(model)))
