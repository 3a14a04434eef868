"""Chizat & Bach (2020): wide two-layer ReLU networks trained with a logistic-type loss.

Training both layers of a mean-field network ``f(x) = (1/m) sum_j b_j relu(a_j . x)``
converges in direction to the F1 (variation-norm) max-margin classifier; training only the
output layer converges to the RKHS (arc-cosine kernel) max-margin classifier. On the k x k
clusters data (``marginlab.data.synthetic.clusters``) with spurious input dimensions, the
first adapts to the 2 informative dimensions and the second does not
(``chizat-vardi.md`` sections 1-3 and 6).

Training follows the reference code (``twonet``): gradient ascent on the soft-min margin
``S = -log sum_i exp(-q_i)`` with the step ``eta_t m grad S``, ``eta_t = c / sqrt(t + 1)``,
and, for output-only training, ``b`` started at 0 and the step multiplied by
``beta_t = max(1, ||b|| / sqrt(m))``. The engine's schedules (constant, loss-based,
normalized) have no decaying step, and a constant normalized step of the reference size
stalls with dead units on this data, so the step is written here, batched over replicas;
the model, data, reference solvers and plots are marginlab's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from marginlab.data import load_dataset
from marginlab.experiments.study import Study
from marginlab.measure.references.f1 import F1Result, f1_max_margin
from marginlab.measure.references.rkhs import (
    KernelSVMResult,
    arccos_kernel,
    empirical_kernel,
    kernel_svm,
)
from marginlab.models.two_layer import TwoLayer
from marginlab.plots import plot_boundary

PAPER_STEPSIZE = 0.5  # the notebook's ``stepsize``
PAPER_K = 3  # clusters per axis


# the reference step ------------------------------------------------------------------------


def step_sizes(stepsize: float, niter: int) -> np.ndarray:
    """The reference schedule ``eta_t = stepsize / sqrt(t + 1)`` for ``t = 1..niter``.

    Examples
    --------
    >>> step_sizes(0.5, 3).round(4).tolist()
    [0.3536, 0.2887, 0.25]
    """
    return stepsize / np.sqrt(np.arange(2, niter + 2, dtype=np.float64))


@dataclass
class TwoNet:
    """Replicas of a width-``m`` two-layer net after :func:`train_twonet`.

    Attributes
    ----------
    first : torch.Tensor
        ``(R, m, d)`` input weights ``a_j``.
    second : torch.Tensor
        ``(R, m)`` output weights ``b_j``.
    margins : numpy.ndarray
        ``(niter, R)`` the reference's normalized margin before each step:
        ``q_min / ((1/m) sum_j ||theta_j||^2)`` (both layers, at most ``gamma_1 / 2``) or
        ``q_min / (||b|| / m)`` (output only, at most ``sqrt(m) gamma_2(K_m)``).
    train : str
        ``"both"`` or ``"output"``.
    """

    first: torch.Tensor
    second: torch.Tensor
    margins: np.ndarray
    train: str

    @property
    def width(self) -> int:
        return self.first.shape[1]

    def best_margin(self) -> np.ndarray:
        """``max_t`` of the normalized margin per replica (the paper's reported value).

        NaN entries (output-only at ``t = 1``, where ``b = 0``) are skipped.
        """
        return np.nanmax(self.margins, axis=0)

    def model(self, replica: int) -> TwoLayer:
        """Replica ``replica`` as a :class:`~marginlab.models.two_layer.TwoLayer` (float64)."""
        d = self.first.shape[2]
        model = TwoLayer(d, self.width, train=self.train).double()
        with torch.no_grad():
            model.body.hidden.weight.copy_(self.first[replica])
            model.output.weight.copy_(self.second[replica][None, :])
        return model


def train_twonet(
    x: torch.Tensor,
    y: torch.Tensor,
    width: int,
    *,
    train: str = "both",
    stepsize: float = PAPER_STEPSIZE,
    niter: int = 1000,
    seeds: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
) -> TwoNet:
    """Train ``R`` replicas with the reference update (module notes), in one batched loop.

    Parameters
    ----------
    x : torch.Tensor
        ``(R, n, d)`` inputs, the constant bias coordinate included.
    y : torch.Tensor
        ``(R, n)`` class indices 0/1 (labels -1/+1).
    width : int
        ``m``.
    train : {"both", "output"}
        Train both layers, or the output layer from ``b = 0`` with the first layer frozen.
    stepsize : float
        ``c`` in ``eta_t = c / sqrt(t + 1)``.
    niter : int
        Steps.
    seeds : sequence of int, optional
        Seed of each replica's ``TwoLayer`` draw (``a_j``, ``b_j`` i.i.d. N(0, 1));
        default ``0..R-1``.
    dtype : torch.dtype
        Precision of the weights and products; float32 halves the cost and changes the
        margins only in their sixth digit (the soft-min weights are shifted by the minimum,
        so nothing overflows). The margins are returned in float64.

    Returns
    -------
    TwoNet

    Examples
    --------
    >>> x = torch.tensor([[[1.0, 0.5], [1.0, -0.5]]], dtype=torch.float64)
    >>> net = train_twonet(x, torch.tensor([[1, 0]]), 20, niter=300)
    >>> bool(net.margins[-1, 0] > 0)
    True
    """
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
    return TwoNet(a, b, margins, train)


# reference ratios -------------------------------------------------------------------------


def f1_ratio(margin: float | np.ndarray, reference: F1Result) -> float | np.ndarray:
    """A both-layer margin ``q_min / ((1/m) sum_j ||theta_j||^2)`` over its bound ``gamma_1 / 2``.

    The ratio is at most 1 (up to the gap of ``reference``), with equality at a balanced
    network realizing an F1 max-margin measure.

    Examples
    --------
    >>> x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 1])
    >>> round(f1_ratio(0.25, f1_max_margin(x, y)), 6)  # gamma_1 = 1 / sqrt(2)
    0.707107
    """
    return 2.0 * margin / reference.lower


def rkhs_ratio(margin: float, reference: KernelSVMResult, width: int) -> float:
    """A reference-normalized output-only margin ``q_min / (||b|| / m)`` over ``sqrt(m) gamma_2``.

    With ``reference`` the SVM of the empirical kernel ``K_m`` of the frozen first layer,
    the ratio is at most 1 and tends to 1 under output-only training.

    Examples
    --------
    >>> round(rkhs_ratio(0.3, KernelSVMResult(np.ones(1), 0.05, 1.0), 100), 6)
    0.6
    """
    return margin / (math.sqrt(width) * reference.margin)


def increasing(values: Sequence[float], slack: float = 0.0) -> bool:
    """Whether each value is at least the previous one minus ``slack``.

    Examples
    --------
    >>> increasing([0.5, 0.7, 0.69], slack=0.02), increasing([0.5, 0.4])
    (True, False)
    """
    return all(b >= a - slack for a, b in zip(values, values[1:], strict=False))


def classification_error(model: TwoLayer, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``y f(x) < 0`` (an exact tie counts as correct, as in the reference).

    Examples
    --------
    >>> model = TwoLayer(2, 3).double()
    >>> x = torch.randn(10, 2, dtype=torch.float64)
    >>> y = (model(x)[:, 0] > 0).long()
    >>> classification_error(model, x, y), classification_error(model, x, 1 - y)
    (0.0, 1.0)
    """
    with torch.no_grad():
        score = model(x.double())[:, 0]
    return float(((2.0 * y.double() - 1.0) * score < 0).double().mean())


# data -------------------------------------------------------------------------------------


@dataclass
class Problem:
    """``R`` samples of the clusters data, one label assignment (``distribution``) each."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def replicas(self) -> int:
        return self.x.shape[0]


def clusters_problem(n: int, d: int, replicas: int, test_n: int, k: int = PAPER_K) -> Problem:
    """Replica ``r`` is ``clusters(n, d, k, distribution=r, seed=r)`` with a fresh test set.

    Examples
    --------
    >>> clusters_problem(8, 5, 2, 4).x.shape
    torch.Size([2, 8, 5])
    """
    sets = [
        load_dataset("clusters", n=n, d=d, k=k, test_n=test_n, distribution=r, seed=r)
        for r in range(replicas)
    ]
    return Problem(
        torch.stack([s.x_train for s in sets]),
        torch.stack([s.y_train for s in sets]),
        torch.stack([s.x_test for s in sets]),
        torch.stack([s.y_test for s in sets]),
    )


def replica_errors(net: TwoNet, problem: Problem) -> list[float]:
    """The test error of each replica of ``net`` on its own test set.

    Examples
    --------
    >>> problem = clusters_problem(8, 3, 2, 20)
    >>> len(replica_errors(train_twonet(problem.x, problem.y, 4, niter=2), problem))
    2
    """
    return [
        classification_error(net.model(r), problem.x_test[r], problem.y_test[r])
        for r in range(problem.replicas)
    ]


# the decision-boundary figure --------------------------------------------------------------


class _Plane(torch.nn.Module):
    """A model on ``(1, x1, x2)`` seen as a model on the plane ``(x1, x2)``."""

    def __init__(self, model: TwoLayer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(len(x), 1, dtype=x.dtype)
        return self.model(torch.cat([ones, x], dim=1))


def boundary_figure(nets: dict[str, TwoNet], x: torch.Tensor, y: torch.Tensor) -> Figure:
    """Side-by-side decision boundaries of replica 0 of each net (inputs ``(1, x1, x2)``)."""
    fig = Figure(figsize=(5.5 * len(nets), 4.5), layout="constrained")
    for ax, (name, net) in zip(
        fig.subplots(1, len(nets), squeeze=False)[0], nets.items(), strict=True
    ):
        title = f"{name}, epoch {len(net.margins)}"
        plot_boundary(ax, _Plane(net.model(0)), x[:, 1:3], y, title=title)
    return fig


def margin_figure(widths: Sequence[int], ratios: np.ndarray) -> Figure:
    """``max_t gamma_t / (gamma_1 / 2)`` against ``m``: each replica and the mean."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    for column in ratios.T:
        ax.semilogx(widths, column, "--", color="grey", alpha=0.5, linewidth=0.8)
    ax.semilogx(widths, ratios.mean(axis=1), "o-", color="black", label="mean over replicas")
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle=":", label="F1 max margin")
    ax.set_xlabel("width m")
    ax.set_ylabel("both layers: max_t gamma_t / (gamma_1 / 2)")
    ax.legend(loc="lower right")
    return fig


# the reproduction -------------------------------------------------------------------------


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def reproduce(study: Study) -> None:
    """Run the Chizat & Bach experiments at ``study.scale`` and record their claims."""
    scale = study.scale
    replicas = study.at_scale(ci=3, cpu=3, full=5)
    # Larger c than the paper's 0.5 at the small scales: the same schedule reaches the
    # margin in fewer steps (measured; 8 already kills units), and only the limit matters.
    stepsize = study.at_scale(ci=2.0, cpu=2.0, full=PAPER_STEPSIZE)
    # Steps: ci and cpu sizes are where the measured ratios have settled (see the claims'
    # tolerances); full is the notebook's 50k, and 400k for the output layer's limit
    # (chizat-vardi.md section 2: 50k leaves output-only training far from it).
    niter = study.at_scale(ci=10000, cpu=20000, full=50000)
    out_niter = study.at_scale(ci=30000, cpu=60000, full=400000)
    sweep_out_niter = study.at_scale(ci=30000, cpu=60000, full=50000)
    test_n = study.at_scale(ci=2000, cpu=4000, full=4000)
    n_main = study.at_scale(ci=64, cpu=128, full=256)
    d_main = study.at_scale(ci=3, cpu=3, full=15)
    widths = study.at_scale(
        ci=[4, 16, 64, 256], cpu=[4, 16, 64, 256], full=[8, 16, 32, 64, 128, 256, 512, 1024]
    )
    width = study.at_scale(ci=256, cpu=256, full=1000)
    dims = study.at_scale(ci=[3, 8], cpu=[3, 6, 10, 15], full=[5, 10, 15, 20, 25])
    sizes = study.at_scale(ci=None, cpu=[32, 64, 128, 256], full=[32, 64, 128, 256, 512])
    settings = f"k={PAPER_K}, c={stepsize}, {replicas} replicas (one label assignment each)"

    # 1. both layers vs the F1 max margin, as m grows --------------------------------------
    problems: dict[tuple[int, int], Problem] = {}
    nets: dict[tuple, TwoNet] = {}

    def problem_for(n: int, d: int) -> Problem:
        if (n, d) not in problems:
            problems[n, d] = clusters_problem(n, d, replicas, test_n)
        return problems[n, d]

    def trained(n: int, d: int, m: int, train: str, steps: int) -> TwoNet:
        """Train once per setting: the sweeps share their points with the m sweep."""
        key = (n, d, m, train, steps)
        if key not in nets:
            study.log(f"training {train}, n={n}, d={d}, m={m}, {steps} steps")
            problem = problem_for(n, d)
            nets[key] = train_twonet(
                problem.x, problem.y, m, train=train, stepsize=stepsize, niter=steps
            )
        return nets[key]

    main = problem_for(n_main, d_main)
    study.log(f"F1 references (n={n_main}, d={d_main})")
    # In d = 15 column generation needs about 60 rounds for a gap of 1e-3, more for 1e-4.
    f1 = [f1_max_margin(main.x[r], main.y[r], max_rounds=300) for r in range(replicas)]
    ratios = np.empty((len(widths), replicas))
    both_nets: dict[int, TwoNet] = {}
    for i, m in enumerate(widths):
        net = trained(n_main, d_main, m, "both", niter)
        both_nets[m] = net
        ratios[i] = [f1_ratio(v, ref) for v, ref in zip(net.best_margin(), f1, strict=True)]
    means = ratios.mean(axis=1)
    # Measured at the largest m: 0.94 at ci (every replica >= 0.92), 0.96 at cpu; full is
    # the acceptance level of chizat-vardi.md section 6 (0.97 observed there at d = 15).
    floor = study.at_scale(ci=0.85, cpu=0.85, full=0.9)
    certified = all(r.certified for r in f1)
    study.check(
        "f1-margin-vs-m",
        "training both layers approaches the F1 max margin as the width m grows",
        ours=f"mean max_t gamma_t/(gamma_1/2) at m={widths}: {_fmt(means)}",
        passed=increasing(list(means), slack=0.02) and means[-1] >= floor,
        tolerance=f"increasing in m (slack 0.02) and >= {floor} at m={widths[-1]} "
        f"after {niter} steps",
        paper_value="F1 margin of GD stabilizes as m grows (qualitative)",
        note=f"n={n_main}, d={d_main}, {settings}; gamma_1 by column generation "
        f"({'certified' if certified else 'heuristic upper bound'}, gaps "
        f"{_fmt([r.gap for r in f1])}); the paper's fig. reports max_t gamma_t",
    )
    study.save_figure(
        "margin-vs-m",
        margin_figure(widths, ratios),
        f"Both layers: best normalized margin over 2 gamma_1 against m (n={n_main}, "
        f"d={d_main}, {niter} steps).",
    )

    # 2. output layer vs the RKHS max margin -------------------------------------------------
    out_net = trained(n_main, d_main, width, "output", out_niter)
    empirical = [
        kernel_svm(empirical_kernel(out_net.first[r], main.x[r], main.x[r]), main.y[r])
        for r in range(replicas)
    ]
    limit = [kernel_svm(arccos_kernel(main.x[r], main.x[r]), main.y[r]) for r in range(replicas)]
    best = out_net.best_margin()
    emp = [rkhs_ratio(float(v), s, width) for v, s in zip(best, empirical, strict=True)]
    arc = [rkhs_ratio(float(v), s, width) for v, s in zip(best, limit, strict=True)]
    # Measured: every replica >= 0.92 at ci (30k steps); full is section 6's level for 400k.
    rkhs_floor = study.at_scale(ci=0.85, cpu=0.85, full=0.85)
    study.check(
        "rkhs-margin-output",
        "training only the output layer approaches the RKHS (kernel SVM) max margin",
        ours=f"max_t gamma_t/(sqrt(m) gamma_2(K_m)) per replica {_fmt(emp)}; "
        f"over the arc-cosine gamma_2: {_fmt(arc)}",
        passed=min(emp) >= rkhs_floor and max(emp) <= 1.0 + 1e-6,
        tolerance=f"every replica in [{rkhs_floor}, 1] (empirical kernel of the frozen "
        f"layer) after {out_niter} steps",
        paper_value=None,
        note=f"n={n_main}, d={d_main}, m={width}, {settings}; b starts at 0 with "
        "beta_t = max(1, ||b||/sqrt(m)) as in the reference code; the arc-cosine ratio "
        "differs from 1 by the finite-m kernel error",
    )
    # The paper's illustration is a d = 3 problem (k = 4, n = 100, m = 500, 300k steps);
    # the small scales draw the figure from the d = 3 runs above.
    if d_main == 3:
        shown = {
            f"both layers, m={widths[-1]}": both_nets[widths[-1]],
            f"output layer, m={width}": out_net,
        }
        plane = main
    else:
        study.log("illustration (k=4, n=100, d=3, m=500)")
        plane = clusters_problem(100, 3, 1, 1, k=4)
        shown = {
            "both layers, m=500": train_twonet(
                plane.x, plane.y, 500, stepsize=stepsize, niter=300000
            ),
            "output layer, m=500": train_twonet(
                plane.x, plane.y, 500, train="output", stepsize=stepsize, niter=300000
            ),
        }
    study.save_figure(
        "decision-boundaries",
        boundary_figure(shown, plane.x[0], plane.y[0]),
        f"Decision boundaries on the (x1, x2) plane of a d = 3 problem ({plane.x.shape[1]} "
        "training points): both layers (left) and output layer only (right).",
    )

    # 3. test error: both vs output, as spurious dimensions grow ----------------------------
    def errors(n: int, d: int) -> tuple[float, float]:
        """Mean test errors of both-layer and output-layer training on one problem."""
        problem = problem_for(n, d)
        both = trained(n, d, width, "both", niter)
        output = trained(n, d, width, "output", sweep_out_niter)
        return float(np.mean(replica_errors(both, problem))), float(
            np.mean(replica_errors(output, problem))
        )

    both_err, out_err = [], []
    for d in dims:
        study.log(f"test error, d={d}")
        both, output = errors(n_main, d)
        both_err.append(both)
        out_err.append(output)
    spurious = [d for d in dims if d > 3] or dims
    beats = all(b < o for d, b, o in zip(dims, both_err, out_err, strict=True) if d in spurious)
    study.check(
        "both-beats-output",
        "training both layers gives a lower test error than training the output layer",
        ours=f"mean test error at d={dims}: both {_fmt(both_err)}, output {_fmt(out_err)}",
        passed=beats,
        tolerance=f"both < output at every d in {spurious}",
        paper_value="both layers below output layer (qualitative)",
        note=f"n={n_main}, m={width}, {settings}, {test_n} test points; steps {niter} "
        f"(both), {sweep_out_niter} (output)",
    )
    gain_both, gain_out = both_err[-1] - both_err[0], out_err[-1] - out_err[0]
    study.check(
        "spurious-dims",
        "as spurious dimensions are added, both-layer training degrades less than "
        "output-layer training",
        ours=f"test error increase d={dims[0]}->{dims[-1]}: both {gain_both:.3g}, "
        f"output {gain_out:.3g}",
        passed=gain_out > 0 and gain_both < gain_out,
        tolerance="output-layer error increases, and by more than both-layer error",
        paper_value="output layer degrades with d, both layers adapt (qualitative)",
        note=f"n={n_main}, m={width}, {settings}",
    )

    # 4. test error against n -----------------------------------------------------------------
    statement = "both-layer test error is below output-layer test error at every n"
    if sizes is None:
        study.not_run(
            "test-error-vs-n",
            statement,
            f"the n sweep needs the cpu or full scale (this is {scale})",
        )
        return
    d_n = study.at_scale(ci=10, cpu=10, full=15)
    both_n, out_n = [], []
    for n in sizes:
        study.log(f"test error, n={n}")
        both, output = errors(n, d_n)
        both_n.append(both)
        out_n.append(output)
    # The smallest n is shown but not judged: at n = 32 both trainings are near chance
    # (chizat-vardi.md section 2: 0.40 vs 0.48), so the order there is noise.
    judged = [n for n in sizes if n >= 64]
    study.check(
        "test-error-vs-n",
        statement,
        ours=f"mean test error at n={sizes}: both {_fmt(both_n)}, output {_fmt(out_n)}",
        passed=all(b < o for n, b, o in zip(sizes, both_n, out_n, strict=True) if n in judged),
        tolerance=f"both < output at every n in {judged}",
        paper_value="both layers below output layer (qualitative)",
        note=f"d={d_n}, m={width}, {settings}",
    )
