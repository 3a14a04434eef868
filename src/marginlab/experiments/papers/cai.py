"""Cai, Wu, Mei, Lindsey & Bartlett 2024: large-stepsize GD on near-homogeneous two-layer nets.

The model is the paper's two-layer network (``cai-related.md`` section 2)

    f(W; x) = (1/m) sum_j a_j phi(<w_j, x>),   a_j = +1, -1, +1, ... fixed,

with only the first layer trained, no biases, and the leaky softplus
``phi(z) = c z + (1 - c) softplus(z)``, ``c = 0.5`` (Figs. 2 and 4 of the paper). It is
trained by full-batch GD with a constant step size on the logistic loss.

The zoo's :class:`~marginlab.models.two_layer.TwoLayer` trains (or freezes) a Gaussian
output layer and cannot fix it to the signs ``a_j``, and the engine's normalized margin is
undefined for a non-homogeneous model, so GD is driven here directly: each step is
``W -= eta * L * grad(log L)`` with ``log L`` and its gradient taken in float64 log space,
exactly the engine's constant-schedule step. Every step of every run is recorded.

Phases (``cai-related.md`` sections 2, 5 and 10.11), detected on the recorded risk:

- the *last increase* ``tau``: the last step ``t`` with ``L_t > L_{t-1}``; from ``tau`` on the
  risk is non-increasing for the rest of the run;
- the *threshold step* ``s``: the first step with ``eta * C * L_t <= 1``, where
  ``C = (alpha_max^2 + beta_phi) R^2 / m`` bounds the self-bounded curvature
  ``||Hessian L|| <= C L`` (``R = max ||x_i||``). The paper's own threshold constant was not
  retrieved; this one is derived (section 2) and is a sufficient descent condition, so the
  paper's claim predicts ``tau <= s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from marginlab.experiments.study import Study
from marginlab.losses import Loss, get_loss
from marginlab.measure.margins import pairwise_margins
from marginlab.models.activations import make_activation

LEAKY_C = 0.5
"""The leaky-softplus parameter of the paper's experiments (Figs. 2 and 4)."""

# Constants of phi_c = c z + (1 - c) softplus(z) (cai-related.md section 3, [D]):
# phi' in [c, 1], |phi''| <= (1 - c) / 4, Euler defect |phi - z phi'| <= (1 - c) log 2.
ALPHA_MAX = 1.0
BETA_PHI = (1.0 - LEAKY_C) / 4.0
KAPPA = (1.0 - LEAKY_C) * math.log(2.0)

# Floating-point slack on ``log L_t - log L_{t-1}``: a rise smaller than this is rounding in
# the log-sum-exp, not a loss increase (true late-phase changes are above 1e-8 here).
INCREASE_TOL = 1e-12

# The five points of the paper's Fig. 4 (appendix), in R^3, labels +1 / -1, as quoted in
# cai-related.md section 6 [V: S3]; max-margin direction (1, 0, 0), normalized margin 0.05.
FIVE_POINTS_X = (
    (0.05, 1.0, 2.0),
    (0.05, -2.0, 1.0),
    (-1.0, 0.0, 2.0),
    (0.05, -2.0, -2.0),
    (0.05, 1.0, -2.0),
)
FIVE_POINTS_Y = (1, 1, -1, 1, 1)

STATEMENTS = {
    "oscillation": "with a large constant step size the risk oscillates (goes up) in phase 1",
    "threshold": (
        "phase 2 begins once the risk falls below a threshold of order 1/eta: from there on "
        "the risk decreases monotonically"
    ),
    "phase1-ends": "phase 1 ends in finitely many steps, after which the risk decreases "
    "monotonically",
    "margin": "the normalized margin grows nearly monotonically in phase 2",
    "faster": (
        "with a budget of T steps, a large step size reaches a lower risk than any small "
        "step size whose risk decreases monotonically"
    ),
}


def five_points() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5-point set of the paper's Fig. 4: inputs ``(5, 3)`` and class indices (1 = +1).

    Examples
    --------
    >>> x, y = five_points()
    >>> x.shape, y.tolist()
    (torch.Size([5, 3]), [1, 1, 0, 1, 1])
    """
    x = torch.tensor(FIVE_POINTS_X, dtype=torch.float64)
    y = torch.tensor([1 if label > 0 else 0 for label in FIVE_POINTS_Y])
    return x, y


class SignedTwoLayer(nn.Module):
    """``f(W; x) = (1/m) sum_j a_j phi(<w_j, x>)`` with fixed signs ``a_j`` (equation (2)).

    Parameters
    ----------
    weight : torch.Tensor
        The first layer ``W``, shape ``(m, d)``; the only parameter.
    activation : str
        A name from :data:`marginlab.models.activations.ACTIVATIONS`.
    **activation_kw
        Its parameters (``c`` for ``leaky_softplus``).

    Examples
    --------
    >>> net = SignedTwoLayer(torch.zeros(2, 3, dtype=torch.float64))
    >>> net.signs.tolist(), net(torch.ones(4, 3, dtype=torch.float64)).shape
    ([1.0, -1.0], torch.Size([4, 1]))
    """

    def __init__(
        self, weight: torch.Tensor, activation: str = "leaky_softplus", **activation_kw: float
    ) -> None:
        super().__init__()
        if activation == "leaky_softplus":
            activation_kw.setdefault("c", LEAKY_C)
        self.weight = nn.Parameter(weight.clone())
        m = weight.shape[0]
        signs = torch.tensor([1.0 if j % 2 == 0 else -1.0 for j in range(m)], dtype=weight.dtype)
        self.register_buffer("signs", signs)
        self.act = make_activation(activation, **activation_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.act(x @ self.weight.T) @ self.signs / len(self.signs)).unsqueeze(1)

    def neuron_margins(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``min_i y_i a_j phi(<w_j, x_i>) / ||w_j||`` for each neuron ``j`` (Fig. 4)."""
        with torch.no_grad():
            sign = 2.0 * y.to(x.dtype) - 1.0
            values = sign[:, None] * self.signs[None, :] * self.act(x @ self.weight.T)
            norms = self.weight.norm(dim=1)
            # undefined for a zero neuron (e.g. W_0 = 0): nan, not a huge number
            return torch.where(norms > 0, values.min(0).values / norms, torch.nan)


def curvature_constant(width: int, radius: float) -> float:
    """``C = (alpha_max^2 + beta_phi) R^2 / m``: ``||Hessian L(W)|| <= C L(W)`` for the model.

    With ``rho = alpha_max R / sqrt(m)`` (gradient bound) and ``beta = beta_phi R^2 / m``
    (Hessian bound of ``f``), the logistic loss gives ``||Hessian L|| <= (rho^2 + beta) L``
    (``cai-related.md`` section 2, [D]). GD descends while ``eta * C * L <= 1``.

    Examples
    --------
    >>> curvature_constant(8, 1.0)
    0.140625
    """
    return (ALPHA_MAX**2 + BETA_PHI) * radius**2 / width


@dataclass
class Trajectory:
    """What one GD run recorded at steps ``0..T`` (``T + 1`` rows each).

    Attributes
    ----------
    eta : float
        The constant step size.
    n : int
        Number of training points.
    log_loss : numpy.ndarray
        ``log L_t`` (natural log of the mean logistic loss).
    q_min : numpy.ndarray
        ``min_i y_i f(W_t; x_i)``.
    norm : numpy.ndarray
        ``||W_t||``.
    neuron_margins : numpy.ndarray or None
        ``(T + 1, m)`` per-neuron normalized margins when requested.
    diverged : bool
        The risk became non-finite (the run stopped there).
    """

    eta: float
    n: int
    log_loss: np.ndarray
    q_min: np.ndarray
    norm: np.ndarray
    neuron_margins: np.ndarray | None = None
    diverged: bool = False

    @property
    def steps(self) -> int:
        return len(self.log_loss) - 1

    @property
    def normalized_margin(self) -> np.ndarray:
        """``gamma_t = min_i y_i f / ||W_t||`` (the paper's (3); nan where ``W = 0``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.norm > 0, self.q_min / self.norm, np.nan)

    @property
    def final_log10_loss(self) -> float:
        return float(self.log_loss[-1] / math.log(10.0)) if not self.diverged else math.inf


def gradient_descent(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    width: int,
    eta: float,
    steps: int,
    init_scale: float = 0.1,
    seed: int = 0,
    record_neurons: bool = False,
    loss: Loss | None = None,
) -> Trajectory:
    """Run ``steps`` full-batch GD steps with constant ``eta`` on :class:`SignedTwoLayer`.

    Parameters
    ----------
    x, y : torch.Tensor
        Inputs ``(n, d)`` (float64) and class indices (``1`` for label +1, ``0`` for -1).
    width : int
        ``m``.
    eta : float
        The constant step size.
    steps : int
        ``T``; the risk is recorded at ``0..T``.
    init_scale : float
        ``W_0`` entries are i.i.d. ``N(0, init_scale^2)``; 0 gives ``W_0 = 0``.
    seed : int
        Seed of ``W_0``.
    record_neurons : bool
        Also record the per-neuron normalized margins (cheap for small ``m``).
    loss : Loss, optional
        Defaults to the logistic loss.

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> x, y = five_points()
    >>> run = gradient_descent(x, y, width=2, eta=3.0, steps=20, init_scale=0.0)
    >>> run.steps, bool(run.log_loss[-1] < run.log_loss[0])
    (20, True)
    """
    loss = loss or get_loss("logistic")
    generator = torch.Generator().manual_seed(seed)
    weight = init_scale * torch.randn(width, x.shape[1], generator=generator, dtype=x.dtype)
    model = SignedTwoLayer(weight)
    n = len(x)
    log_losses, q_mins, norms, neurons = [], [], [], []
    diverged = False
    for t in range(steps + 1):
        margins = pairwise_margins(model(x), y)
        log_loss_sum = torch.logsumexp(loss.log_per_sample(margins), dim=0)
        log_loss = float(log_loss_sum.detach()) - math.log(n)
        log_losses.append(log_loss)
        q_mins.append(float(margins.detach().min()))
        norms.append(float(model.weight.detach().norm()))
        if record_neurons:
            neurons.append(model.neuron_margins(x, y).numpy())
        if not math.isfinite(log_loss):
            diverged = True
            break
        if t == steps:
            break
        (grad,) = torch.autograd.grad(log_loss_sum, [model.weight])
        with torch.no_grad():
            # grad(L) = L * grad(log L) = exp(log L) * grad(log-sum) (the 1/n is in log L)
            model.weight.add_(grad, alpha=-eta * math.exp(log_loss))
    return Trajectory(
        eta,
        n,
        np.array(log_losses),
        np.array(q_mins),
        np.array(norms),
        np.array(neurons) if record_neurons else None,
        diverged,
    )


# Phase detection ------------------------------------------------------------------------


def loss_increases(log_losses: Sequence[float], tol: float = INCREASE_TOL) -> np.ndarray:
    """The steps ``t >= 1`` at which the risk went up: ``log L_t > log L_{t-1} + tol``.

    Examples
    --------
    >>> loss_increases(np.log([4.0, 2.0, 3.0, 1.0, 1.5, 0.5])).tolist()
    [2, 4]
    """
    values = np.asarray(log_losses, dtype=float)
    return np.nonzero(np.diff(values) > tol)[0] + 1


@dataclass(frozen=True)
class Phases:
    """The two phases of one large-step run.

    Attributes
    ----------
    steps : int
        ``T``, the last recorded step.
    increases : int
        How many steps raised the risk.
    last_increase : int or None
        ``tau``, the last step that raised the risk; None when the risk never went up.
    threshold_step : int or None
        ``s``, the first step with ``eta * C * L_s <= level``; None when never reached.
    increases_after_threshold : int
        Risk increases at steps after ``s`` (0 when ``s`` is None).
    """

    steps: int
    increases: int
    last_increase: int | None
    threshold_step: int | None
    increases_after_threshold: int

    @property
    def stable_from(self) -> int:
        """First step of the monotone tail: ``tau`` (or 0 when the risk never went up)."""
        return 0 if self.last_increase is None else self.last_increase

    @property
    def phase2_start(self) -> int:
        """The threshold step when reached, else the start of the monotone tail."""
        return self.threshold_step if self.threshold_step is not None else self.stable_from


def detect_phases(
    log_losses: Sequence[float],
    eta: float,
    curvature: float,
    level: float = 1.0,
    tol: float = INCREASE_TOL,
) -> Phases:
    """Find the last risk increase and the first step below the stable threshold.

    Parameters
    ----------
    log_losses : sequence of float
        ``log L_t`` for ``t = 0..T``.
    eta : float
        The step size.
    curvature : float
        ``C`` of :func:`curvature_constant`.
    level : float
        The threshold is ``eta * C * L <= level``.
    tol : float
        Rises of ``log L`` up to ``tol`` are not counted (rounding).

    Returns
    -------
    Phases

    Examples
    --------
    >>> p = detect_phases(np.log([1.0, 3.0, 2.0, 4.0, 0.5, 0.2, 0.1]), eta=2.0, curvature=1.0)
    >>> p.increases, p.last_increase, p.threshold_step, p.increases_after_threshold
    (2, 3, 4, 0)
    """
    values = np.asarray(log_losses, dtype=float)
    ups = loss_increases(values, tol)
    below = np.nonzero(math.log(eta * curvature) + values <= math.log(level))[0]
    threshold = int(below[0]) if len(below) else None
    after = 0 if threshold is None else int(np.sum(ups > threshold))
    return Phases(
        steps=len(values) - 1,
        increases=len(ups),
        last_increase=int(ups[-1]) if len(ups) else None,
        threshold_step=threshold,
        increases_after_threshold=after,
    )


def max_drawdown(values: Sequence[float]) -> float:
    """The largest fall of a sequence below its running maximum (0 for a non-decreasing one).

    Examples
    --------
    >>> max_drawdown([0.0, 1.0, 0.7, 2.0, 1.9])
    0.30000000000000004
    >>> max_drawdown([1.0, 2.0, 3.0])
    0.0
    """
    array = np.asarray(values, dtype=float)
    if len(array) == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(array) - array))


@dataclass(frozen=True)
class Monotonicity:
    """How far a sequence is from non-decreasing.

    Attributes
    ----------
    rise : float
        Last value minus first.
    drawdown : float
        :func:`max_drawdown`.
    relative_drawdown : float
        ``drawdown / rise`` (inf when the sequence did not rise).
    decreasing_steps : int
        Steps at which the value went down.
    """

    rise: float
    drawdown: float
    relative_drawdown: float
    decreasing_steps: int

    def nearly_increasing(self, tolerance: float) -> bool:
        """Rose overall, and never fell by more than ``tolerance`` times the rise."""
        return self.rise > 0 and self.relative_drawdown <= tolerance


def monotonicity(values: Sequence[float]) -> Monotonicity:
    """Measure how nearly non-decreasing ``values`` is.

    Examples
    --------
    >>> m = monotonicity([0.0, 1.0, 0.9, 2.0])
    >>> m.rise, round(m.relative_drawdown, 3), m.decreasing_steps, m.nearly_increasing(0.1)
    (2.0, 0.05, 1, True)
    """
    array = np.asarray(values, dtype=float)
    if len(array) < 2 or not np.all(np.isfinite(array)):
        return Monotonicity(math.nan, math.nan, math.inf, 0)
    rise = float(array[-1] - array[0])
    drawdown = max_drawdown(array)
    relative = drawdown / rise if rise > 0 else math.inf
    return Monotonicity(rise, drawdown, relative, int(np.sum(np.diff(array) < 0)))


def margin_window(run: Trajectory, phases: Phases) -> int | None:
    """First step of phase 2 at which every point is classified correctly (``q_min > 0``).

    The margin result needs a positive margin (``cai-related.md`` section 5), so the window
    starts there.

    Examples
    --------
    >>> run = Trajectory(1.0, 2, np.zeros(4), np.array([-1.0, -0.5, 0.2, 0.4]), np.ones(4))
    >>> margin_window(run, Phases(3, 0, None, 1, 0))
    2
    """
    positive = np.nonzero(run.q_min[phases.phase2_start :] > 0)[0]
    return None if len(positive) == 0 else phases.phase2_start + int(positive[0])


def best_monotone(runs: Sequence[Trajectory]) -> Trajectory | None:
    """Among runs whose risk never went up, the one with the lowest final risk.

    Examples
    --------
    >>> a = Trajectory(1.0, 1, np.log([1.0, 0.5]), np.zeros(2), np.ones(2))
    >>> b = Trajectory(2.0, 1, np.log([1.0, 0.2]), np.zeros(2), np.ones(2))
    >>> c = Trajectory(4.0, 1, np.log([1.0, 2.0, 0.01]), np.zeros(3), np.ones(3))
    >>> best_monotone([a, b, c]).eta
    2.0
    """
    monotone = [r for r in runs if not r.diverged and len(loss_increases(r.log_loss)) == 0]
    return min(monotone, key=lambda r: r.log_loss[-1], default=None)


# Settings per scale ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """One data set's experiment: model width, budget, and step sizes in units of ``1/C``.

    Step sizes are given as ``eta * C`` (``C`` of :func:`curvature_constant`), so they do not
    change meaning with the width or the input radius; the threshold is then ``L <= 1/(eta C)``.
    """

    width: int
    steps: int
    large: float
    small: tuple[float, ...]
    init_scale: float = 0.1
    seed: int = 0
    params: dict = field(default_factory=dict)


# Chosen so that the large step size goes through a visible EoS phase and the small grid
# brackets the largest monotone step size (its top value already oscillates).
SETUPS = {
    "xor": {
        "ci": Setup(8, 2000, 288.0, (9.0, 18.0, 36.0, 72.0), params={"n": 40, "noise": 0.1}),
        "cpu": Setup(
            16, 10000, 1152.0, (9.0, 18.0, 36.0, 72.0, 144.0), params={"n": 100, "noise": 0.1}
        ),
        "full": Setup(
            64,
            100000,
            4608.0,
            (9.0, 18.0, 36.0, 72.0, 144.0, 288.0),
            params={"n": 100, "noise": 0.1},
        ),
    },
    "cifar": {
        "cpu": Setup(8, 2500, 9216.0, (36.0, 72.0, 144.0, 288.0), params={"n_train": 500}),
        "full": Setup(
            64, 100000, 36864.0, (36.0, 72.0, 144.0, 288.0, 576.0), params={"n_train": 6000}
        ),
    },
}

FIVE_POINT_ETA = 3.0  # Fig. 4 of the paper
FIVE_POINT_LARGE_ETA = 100.0  # an EoS run on the separable 5-point set (ours)


def _unit_radius(x: torch.Tensor) -> torch.Tensor:
    # ||x_i|| <= 1 as in the paper's setting; XOR keeps its geometry (one common scale).
    return x / x.norm(dim=1).max()


def xor_data(params: dict, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The XOR training set, scaled so that ``max ||x_i|| = 1``.

    Examples
    --------
    >>> x, y = xor_data({"n": 8, "noise": 0.0})
    >>> round(float(x.norm(dim=1).max()), 12), y.tolist()[:4]
    (1.0, [1, 0, 1, 0])
    """
    from marginlab.data import load_dataset

    data = load_dataset("xor", seed=seed, **params)
    return _unit_radius(data.x_train), data.y_train


def cifar_data(n_train: int, data_dir: str | None, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Airplane (-1) vs automobile (+1) from CIFAR-10: flattened, centered, unit norm."""
    from marginlab.data import load_dataset

    data = load_dataset(
        "cifar10",
        classes=[0, 1],
        n_train=n_train,
        subset="random",
        seed=seed,
        data_dir=data_dir,
    )
    x = data.x_train.flatten(1)
    # Centering removes the common mean image, which would otherwise dominate every input;
    # unit norm then meets ||x_i|| <= 1 with R = 1.
    x = x - x.mean(0)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12), data.y_train


# Claims ---------------------------------------------------------------------------------


@dataclass
class Experiment:
    """The runs of one data set, kept for the figure."""

    name: str
    curvature: float
    large: Trajectory
    small: list[Trajectory]
    phases: Phases

    @property
    def best_small(self) -> Trajectory | None:
        return best_monotone(self.small)


def run_experiment(
    study: Study, name: str, x: torch.Tensor, y: torch.Tensor, setup: Setup
) -> Experiment:
    """Run the large step size and the small grid on one data set and check its claims."""
    radius = float(x.norm(dim=1).max())
    curvature = curvature_constant(setup.width, radius)

    def run(scaled_eta: float) -> Trajectory:
        eta = scaled_eta / curvature
        study.log(f"{name}: GD eta={eta:.4g} (eta*C={scaled_eta:g}), {setup.steps} steps")
        return gradient_descent(
            x,
            y,
            width=setup.width,
            eta=eta,
            steps=setup.steps,
            init_scale=setup.init_scale,
            seed=setup.seed,
        )

    large = run(setup.large)
    small = [run(s) for s in setup.small]
    _save_trajectories(study, name, [large, *small])
    phases = detect_phases(large.log_loss, large.eta, curvature)
    experiment = Experiment(name, curvature, large, small, phases)
    _check_phases(study, experiment, setup)
    _check_margin(study, experiment)
    _check_faster(study, experiment, setup)
    return experiment


def _setting(experiment: Experiment, setup: Setup) -> str:
    return (
        f"{experiment.name}, n={experiment.large.n}, m={setup.width}, leaky softplus c=0.5, "
        f"eta={experiment.large.eta:.4g} (eta*C={setup.large:g}, C={experiment.curvature:.4g}), "
        f"T={setup.steps}"
    )


def _check_phases(study: Study, experiment: Experiment, setup: Setup) -> None:
    p, run, name = experiment.phases, experiment.large, experiment.name
    where = _setting(experiment, setup)
    tau = "none" if p.last_increase is None else str(p.last_increase)
    s = "not reached" if p.threshold_step is None else str(p.threshold_step)
    boundaries = f"last increase tau={tau}, threshold step s={s} (eta*C*L_s <= 1)"
    phase1_peak = float(np.max(run.log_loss[: p.stable_from + 1]) / math.log(10))
    study.check(
        f"{name}-oscillation",
        STATEMENTS["oscillation"],
        ours=f"{p.increases} loss increases in steps 1..{tau}; peak log10 L = {phase1_peak:.3g}",
        passed=p.increases >= 2 and not run.diverged,
        tolerance="at least 2 steps with L_t > L_{t-1} before the last increase (non-monotone)",
        paper_value="risk oscillates in phase 1 (Figs. 1, 2; qualitative)",
        note=where,
    )
    study.check(
        f"{name}-threshold",
        STATEMENTS["threshold"],
        ours=f"{boundaries}; {p.increases_after_threshold} increases after s",
        passed=p.threshold_step is not None
        and p.increases_after_threshold == 0
        and not run.diverged,
        tolerance="s reached within T and no risk increase after s (so tau <= s)",
        paper_value=None,
        note="the paper's threshold constant was not retrieved; ours is the derived "
        "sufficient condition eta*C*L <= 1, C=(alpha_max^2+beta_phi)R^2/m. " + where,
    )
    tail = p.steps - p.stable_from
    study.check(
        f"{name}-phase1-ends",
        STATEMENTS["phase1-ends"],
        ours=f"{boundaries}; monotone decrease over the last {tail} of {p.steps} steps",
        passed=p.last_increase is not None and p.stable_from <= p.steps // 2 and not run.diverged,
        tolerance="tau <= T/2: the risk decreases monotonically over at least half the budget",
        paper_value="oscillating phase, then monotone decrease (abstract; qualitative)",
        note=where,
    )


def _check_margin(study: Study, experiment: Experiment, tolerance: float = 0.01) -> None:
    run, name = experiment.large, experiment.name
    start = margin_window(run, experiment.phases)
    statement = STATEMENTS["margin"]
    rule = (
        f"from the first phase-2 step with every point classified to T: the margin rises, and "
        f"never falls below its running maximum by more than {tolerance:g} x the rise"
    )
    if start is None or start >= run.steps - 1:
        study.check(
            f"{name}-margin",
            statement,
            ours="no phase-2 step with a positive margin",
            passed=False,
            tolerance=rule,
            paper_value=None,
        )
        return
    gamma = run.normalized_margin[start:]
    m = monotonicity(gamma)
    study.check(
        f"{name}-margin",
        statement,
        ours=f"gamma {gamma[0]:.4g} -> {gamma[-1]:.4g} over steps {start}..{run.steps}; "
        f"max drawdown {m.relative_drawdown:.2g} x rise; {m.decreasing_steps} decreasing steps",
        passed=m.nearly_increasing(tolerance),
        tolerance=rule,
        paper_value="normalized margin increases (nearly) monotonically in phase 2 (Fig. 2)",
        note="gamma = min_i y_i f(W; x_i) / ||W||",
    )


def _check_faster(study: Study, experiment: Experiment, setup: Setup) -> None:
    run, name = experiment.large, experiment.name
    best = experiment.best_small
    curvature = experiment.curvature
    grid = ", ".join(f"{s:g}" for s in setup.small)
    rule = f"log10 L_T(large) < log10 L_T(best monotone eta*C in {{{grid}}})"
    if best is None:
        study.check(
            f"{name}-faster",
            STATEMENTS["faster"],
            ours="no small step size was monotone",
            passed=False,
            tolerance=rule,
        )
        return
    ours = (
        f"large eta*C={run.eta * curvature:g}: log10 L_T = {run.final_log10_loss:.3g}; best "
        f"monotone eta*C={best.eta * curvature:g}: log10 L_T = {best.final_log10_loss:.3g}"
    )
    study.check(
        f"{name}-faster",
        STATEMENTS["faster"],
        ours=ours,
        passed=run.final_log10_loss < best.final_log10_loss,
        tolerance=rule,
        paper_value="O~(1/T^2) with eta ~ T vs Omega(1/T) for monotone GD (rates; no number)",
        note=f"T={setup.steps}; the grid's monotone runs: "
        + ", ".join(
            f"{r.eta * curvature:g}"
            for r in experiment.small
            if not r.diverged and len(loss_increases(r.log_loss)) == 0
        ),
    )


def five_point_experiment(study: Study, steps: int) -> tuple[Trajectory, Trajectory]:
    """Fig. 4 (neurons keep negative margins while the network margin turns positive) and an
    EoS run on the separable 5-point set (phase 1 ends: claim 4 of the abstract)."""
    x, y = five_points()
    fig4 = gradient_descent(
        x, y, width=2, eta=FIVE_POINT_ETA, steps=steps, init_scale=0.0, record_neurons=True
    )
    # W_0 = 0 (as in Wu et al.'s toy runs): deterministic, and both neurons start symmetric.
    neurons = fig4.neuron_margins[1:]  # undefined at W_0 = 0
    gamma = fig4.normalized_margin
    positive = np.nonzero(gamma > 0)[0]
    first_positive = int(positive[0]) if len(positive) else None
    worst_neuron = float(np.nanmax(neurons))
    study.check(
        "five-point-neurons",
        "on the 5-point set both neurons keep negative individual margins throughout, while "
        "the network's normalized margin increases and becomes positive",
        ours=f"max over t>=1 and neurons of min_i y_i a_j phi(<w_j,x_i>)/||w_j|| = "
        f"{worst_neuron:.3g}; gamma_T = {gamma[-1]:.3g}, positive from step "
        f"{first_positive}",
        passed=worst_neuron < 0
        and first_positive is not None
        and monotonicity(gamma[first_positive:]).nearly_increasing(0.01),
        tolerance="every neuron margin < 0 at every step; gamma > 0 from some step on, and "
        "nearly increasing after (drawdown <= 0.01 x rise)",
        paper_value="both neurons negative, network margin increases and becomes positive (Fig. 4)",
        note=f"m=2, a=(+1,-1)/2, eta={FIVE_POINT_ETA:g}, W_0=0, T={steps}, raw coordinates",
    )
    large = gradient_descent(x, y, width=2, eta=FIVE_POINT_LARGE_ETA, steps=steps, init_scale=0.0)
    radius = float(x.norm(dim=1).max())
    p = detect_phases(large.log_loss, large.eta, curvature_constant(2, radius))
    tau = "none" if p.last_increase is None else str(p.last_increase)
    study.check(
        "five-point-phase1-ends",
        "on linearly separable data with phi' >= alpha > 0, the oscillating phase ends in "
        "finitely many steps",
        ours=f"{p.increases} increases, last at tau={tau} of T={steps}",
        passed=p.increases >= 2 and p.stable_from <= steps // 2 and not large.diverged,
        tolerance="the risk oscillates (>= 2 increases), then decreases monotonically from "
        "tau <= T/2 on",
        paper_value="phase 1 ends in finite time (abstract; bound not retrieved)",
        note=f"m=2, eta={FIVE_POINT_LARGE_ETA:g} (ours), W_0=0; separable with margin 0.05, "
        f"phi' >= {LEAKY_C}",
    )
    _save_trajectories(study, "five-point", [fig4, large])
    return fig4, large


def _save_trajectories(study: Study, name: str, runs: Sequence[Trajectory]) -> None:
    path = study.out / "trajectories" / f"{name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for run in runs:
        key = f"eta={run.eta:.6g}"
        arrays[f"{key}/log_loss"] = run.log_loss
        arrays[f"{key}/q_min"] = run.q_min
        arrays[f"{key}/norm"] = run.norm
    np.savez_compressed(path, **arrays)


def _figure(
    study: Study, experiments: Sequence[Experiment], five: tuple[Trajectory, Trajectory]
) -> None:
    import matplotlib.pyplot as plt

    columns = len(experiments) + 1
    fig, axes = plt.subplots(2, columns, figsize=(4.6 * columns, 6.5), squeeze=False)
    for column, experiment in enumerate(experiments):
        top, bottom = axes[0, column], axes[1, column]
        chosen = [("large", experiment.large, "C3")]
        if experiment.best_small is not None:
            chosen.append(("best monotone small", experiment.best_small, "C0"))
        high = 0.0
        for label, run, color in chosen:
            steps = np.arange(len(run.log_loss))
            text = f"{label}, eta*C={run.eta * experiment.curvature:g}"
            top.plot(steps, run.log_loss / math.log(10), color=color, lw=1.0, label=text)
            bottom.plot(steps, run.normalized_margin, color=color, lw=1.0, label=text)
            high = max(high, float(np.nanmax(run.normalized_margin)))
        p = experiment.phases
        for ax in (top, bottom):
            if p.last_increase is not None:
                ax.axvline(p.last_increase, color="k", ls="--", lw=0.8, label="last increase")
            if p.threshold_step is not None:
                ax.axvline(p.threshold_step, color="k", ls=":", lw=0.8, label="eta C L <= 1")
        top.set_title(experiment.name)
        if high > 0:
            # Early margins are very negative; the claim is about the positive phase-2 part.
            bottom.set_ylim(-0.5 * high, 1.1 * high)
        top.legend(fontsize=7)
    fig4, large = five
    top, bottom = axes[0, -1], axes[1, -1]
    for run, color in ((fig4, "C0"), (large, "C3")):
        steps = np.arange(len(run.log_loss))
        top.plot(steps, run.log_loss / math.log(10), color=color, lw=1.0, label=f"eta={run.eta:g}")
    steps = np.arange(len(fig4.log_loss))
    bottom.plot(steps, fig4.normalized_margin, color="k", lw=1.2, label="network")
    for j in range(fig4.neuron_margins.shape[1]):
        bottom.plot(steps, fig4.neuron_margins[:, j], lw=1.0, label=f"neuron {j + 1}")
    bottom.axhline(0.0, color="0.6", lw=0.6)
    top.set_title("5-point set (Fig. 4), m=2, W_0=0")
    top.legend(fontsize=7)
    bottom.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(left=0)
        ax.set_xlabel("step t")
    for row, label in ((0, "log10 mean logistic loss"), (1, "normalized margin")):
        axes[row, 0].set_ylabel(label)
    fig.tight_layout()
    study.save_figure(
        "cai-phases",
        fig,
        "Full-batch GD on the two-layer leaky-softplus network. Left columns: log10 risk (top) "
        "and normalized margin min_i y_i f / ||W|| (bottom) against the step, for the large "
        "step size and the best monotone small one; dashed: last risk increase, dotted: first "
        "step with eta*C*L <= 1. Right: the 5-point set, risk at eta=3 and eta=100, and at "
        "eta=3 the network margin against each neuron's margin (Fig. 4).",
    )


def reproduce(study: Study) -> None:
    """Run the paper's experiments at ``study.scale`` and record its claims.

    Examples
    --------
    >>> import tempfile
    >>> study = Study("cai", "ci", tempfile.mkdtemp())
    >>> reproduce(study)  # doctest: +SKIP
    >>> {c.verdict for c in study.claims}  # doctest: +SKIP
    {'PASS', 'NOT RUN'}
    """
    torch.set_num_threads(1)  # the runs are tiny; more threads only contend
    experiments = []
    xor_setup = SETUPS["xor"][study.scale]
    x, y = xor_data(xor_setup.params, seed=xor_setup.seed)
    experiments.append(run_experiment(study, "xor", x, y, xor_setup))

    five = five_point_experiment(study, study.at_scale(ci=3000, cpu=10000, full=100000))

    if study.scale == "ci":
        reason = "ci scale: the CIFAR-10 subset runs at --scale cpu and full"
    else:
        reason = study.data_missing("cifar10")
    if reason is None:
        setup = SETUPS["cifar"][study.scale]
        x, y = cifar_data(setup.params["n_train"], study.data_dir, seed=setup.seed)
        experiments.append(run_experiment(study, "cifar", x, y, setup))
    else:
        for key in ("oscillation", "threshold", "phase1-ends", "margin", "faster"):
            study.not_run(f"cifar-{key}", STATEMENTS[key], reason)
    _figure(study, experiments, five)
