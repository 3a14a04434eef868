"""Vardi, Shamir & Srebro 2022: KKT points of the max-margin problem need not be optimal.

Only the abstract and the introduction of the paper were read
(``shared/papers/published-text.md``): the phenomena are the paper's (gradient flow
converges to KKT points of the max-margin problem that, for diagonal linear and ReLU
networks, need not even be local optima; linear fully connected networks and some
settings with nonzero weights or inputs are optimal), but every construction, number,
initialization and per-layer definition checked here is **ours**: the constructions V1-V6
of ``chizat-vardi.md`` section 5 (:mod:`marginlab.measure.references.vardi`), built to show
each phenomenon and verified numerically. The claims are checked in three ways:

- **constructions**: each of V1 ... V6 is a KKT point to 1e-9 with the stated multipliers,
  the local probe finds a strictly better nearby point exactly on the constructions that are
  not local optima, and a multistart search finds nothing better than the global ones;
- **gradient descent**: small nets trained on the constructions' data sets, from the
  summary's stated initializations, from a ball around the V4 one (the "open set"), and from
  random Gaussian initializations; each end point is classified by :func:`classify`, and the
  frequency of end points the probe can improve on the data sets with non-local KKT points
  is compared with the classifier's false-positive rate on data sets where every KKT point
  is local;
- **per layer** (:mod:`marginlab.measure.references.per_layer`): with all layers but one
  fixed, is that layer a local, and where decidable a global, solution of the max-margin
  problem restricted to it.

Gradient descent runs many seeds at once (:func:`batched_gd`): first plain gradient descent
on the mean logistic loss, which decides where each seed goes, then steps on ``log L``
normalized to a relative length that decays, which drives the loss to ``exp(-10^k)`` in a
few thousand steps so that the direction settles at its KKT point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector

from marginlab.experiments.claims import ClaimSpec, Judgement
from marginlab.experiments.study import Study
from marginlab.measure.kkt import Certificate, kkt_certificates
from marginlab.measure.margins import normalized_margin
from marginlab.measure.references.local_probe import local_probe
from marginlab.measure.references.nonconvex import nonconvex_max_margin
from marginlab.measure.references.per_layer import per_layer_optimality
from marginlab.measure.references.vardi import CONSTRUCTIONS, Construction, construction, verify
from marginlab.measure.trajectory import binomial_interval, excess_frequency
from marginlab.training.fit import fit
from marginlab.training.schedules import ScheduleState, advance

NOT_SEPARATED = "not separated"
NOT_KKT = "not a KKT point"
IMPROVABLE = "improvable KKT point"
UNIMPROVABLE = "no better point found"

# The summary's stated initializations (section 5), ours: V1's u1 = -v1 keeps w1 = u1 v1 at
# 0, V4's and V5's give each neuron one sample only.
STATED_INITS = {
    "V1": [0.1, 0.1, -0.1, 0.1],
    "V4": [0.1, -0.05, -0.05, 0.1, 0.1, 0.1],
    "V5": [
        0.1,
        -0.05,
        0.1 * math.cos(math.radians(100.0)) - 0.05,
        0.1 * math.sin(math.radians(100.0)),
        0.1,
        0.1,
    ],
}
# where gradient descent from the stated initialization ends, as the probe classifies it
STATED_ENDS = {"V1": IMPROVABLE, "V4": IMPROVABLE, "V5": UNIMPROVABLE}
# data sets with KKT points that are not local optima, and controls where every KKT point
# gradient descent reaches is local (V2: every KKT point global; V5: nonzero inputs; V6:
# fully connected linear)
NOT_LOCAL_SETS = ("V1", "V3", "V4")
CONTROL_SETS = ("V2", "V5", "V6-L2")


@dataclass(frozen=True)
class PlainThenNormalized:
    """The schedule of :func:`batched_gd`, a schedule object of the engine.

    Epochs ``k < plain_steps``: ``theta -= lr * grad L`` (mean logistic loss). Then
    ``theta -= eta_k ||theta|| g / ||g||`` with ``g = grad log L`` and
    ``eta_k = eta / (1 + (k - plain_steps) / decay)``: the descent direction of gradient
    flow, at a relative step that shrinks so the direction settles instead of oscillating
    between the active constraints. A run with no gradient (every unit dead) stays where it
    is.

    Examples
    --------
    >>> schedule = PlainThenNormalized(plain_steps=1, lr=0.2, eta=0.05, decay=100.0)
    >>> state = schedule.init(-1.0)
    >>> round(schedule.log_step_factor(state, -1.0, norm=2.0, gradient_norm=4.0), 6)
    -2.609438
    >>> _, state = schedule.end_epoch(state, -1.5, True)
    >>> round(math.exp(schedule.log_step_factor(state, -1.5, norm=2.0, gradient_norm=4.0)), 6)
    0.025
    """

    plain_steps: int
    lr: float
    eta: float
    decay: float
    rolls_back: ClassVar[bool] = False
    uses_norm: ClassVar[bool] = True
    uses_gradient_norm: ClassVar[bool] = True

    def init(self, log_loss: float) -> ScheduleState:
        return ScheduleState(alpha=self.lr, log_frame=log_loss)

    def log_step_factor(
        self, state: ScheduleState, log_batch_loss: float, norm: float, gradient_norm: float
    ) -> float | None:
        if not math.isfinite(log_batch_loss):
            return None
        if state.epochs < self.plain_steps:
            return math.log(self.lr) + log_batch_loss
        if norm == 0.0 or gradient_norm == 0.0:
            return -math.inf
        step = self.eta / (1.0 + (state.epochs - self.plain_steps) / self.decay)
        return math.log(step * norm / gradient_norm)

    def end_epoch(
        self,
        state: ScheduleState,
        log_loss: float,
        completed: bool,
        smoothed_margin: float | None = None,
    ) -> tuple[bool, ScheduleState]:
        return advance(state, log_loss, completed, "plain-then-normalized")


def batched_gd(
    item: Construction,
    theta0: torch.Tensor,
    *,
    plain_steps: int = 500,
    log_steps: int = 2000,
    lr: float = 0.2,
    eta: float = 0.05,
    decay: float = 100.0,
) -> torch.Tensor:
    """Gradient descent from each row of ``theta0`` on the construction's data, under
    :class:`PlainThenNormalized`: every row is a replica of one :func:`marginlab.fit`.

    Parameters
    ----------
    item : Construction
        Gives the model (its architecture) and the data.
    theta0 : torch.Tensor
        ``(S, P)`` initial parameters, one row per seed.
    plain_steps, log_steps, lr, eta, decay
        The schedule (:class:`PlainThenNormalized`); ``plain_steps + log_steps`` epochs.

    Returns
    -------
    torch.Tensor
        ``(S, P)`` final parameters.

    Examples
    --------
    >>> c = construction("V2")
    >>> theta = batched_gd(c, 0.3 * torch.ones(1, 4, dtype=torch.float64), log_steps=200)
    >>> round(normalized_margin(c.model_at(theta[0]), c.x, c.y), 6)
    0.5
    """
    epochs = plain_steps + log_steps
    models = [item.model_at(theta) for theta in theta0.detach().double()]
    fit(
        models,
        item.x,
        item.y,
        loss="logistic",
        schedule=PlainThenNormalized(plain_steps, lr, eta, decay),
        max_epochs=epochs,
        log_every=epochs,
        threads=1,
        progress=False,
        batched=True,
        name=f"vardi-{item.name}",
        # only the end points count, and the loss falls thousands of decades an epoch
        checkpoint_decades=None,
        row_decades=None,
    )
    return torch.stack([parameters_to_vector(model.parameters()).detach() for model in models])


@dataclass(frozen=True)
class Endpoint:
    """Where one gradient-descent run ended (see :func:`classify`).

    Attributes
    ----------
    status : str
        ``"not separated"``, ``"not a KKT point"``, ``"improvable KKT point"`` or
        ``"no better point found"``.
    margin : float
        Normalized margin ``q_min / ||theta||^L``.
    kkt_residual : float or None
        Relative residual of the best KKT certificate (activity tolerance 0.1).
    improvement : float or None
        Relative margin gain the probe found in the ball.
    """

    status: str
    margin: float
    kkt_residual: float | None = None
    improvement: float | None = None


def classify(
    item: Construction,
    theta: torch.Tensor,
    *,
    kkt_tol: float = 1e-2,
    radius: float = 0.2,
    min_gain: float = 5e-3,
    n_random: int = 200,
    seed: int = 0,
) -> Endpoint:
    """Classify a gradient-descent end point: KKT or not, improvable nearby or not.

    An end point is a KKT point when its best certificate (constraints within 10% of the
    smallest margin) has relative residual at most ``kkt_tol``. It is *improvable* when the
    local probe in the ball of relative ``radius`` gains more than
    ``max(10 * residual * radius, min_gain)``. A point that gradient descent has not quite
    brought to its KKT point can gain a little for that reason alone: about
    ``eps * radius`` to first order, and at most its distance in margin from the KKT point
    it approaches (below 0.2% in our runs). The non-local constructions gain far more within
    ``radius = 0.2``: 3.8% (V1), 6% (V3), 15% (V4).

    Parameters
    ----------
    item : Construction
        The model architecture and data.
    theta : torch.Tensor
        Flat parameters.
    kkt_tol : float
        Largest relative KKT residual of a KKT point.
    radius, n_random, seed
        Settings of the local probe.
    min_gain : float
        Smallest relative gain that counts as improvable.

    Returns
    -------
    Endpoint

    Examples
    --------
    >>> c = construction("V4")
    >>> classify(c, c.theta).status
    'improvable KKT point'
    >>> classify(c, c.better).status
    'no better point found'
    """
    model = item.model_at(theta)
    margin = normalized_margin(model, item.x, item.y)
    if not margin > 0:
        return Endpoint(NOT_SEPARATED, margin)
    residual = kkt_certificates(model, item.x, item.y, "logistic", taus=[0.1]).certificates[0]
    if residual.eps_rel > kkt_tol:
        return Endpoint(NOT_KKT, margin, residual.eps_rel)
    probe = local_probe(
        model, item.x, item.y, radius=radius, n_random=n_random, n_local=2, tol=1e-12, seed=seed
    )
    threshold = max(10.0 * residual.eps_rel * radius, min_gain)
    status = IMPROVABLE if probe.improvement > threshold else UNIMPROVABLE
    return Endpoint(status, margin, residual.eps_rel, probe.improvement)


def frequency(statuses: Sequence[str], status: str = IMPROVABLE) -> tuple[int, int]:
    """How many end points have ``status``, out of those that separated the data.

    Examples
    --------
    >>> frequency([IMPROVABLE, NOT_SEPARATED, UNIMPROVABLE])
    (1, 2)
    """
    separated = [s for s in statuses if s != NOT_SEPARATED]
    return sum(s == status for s in separated), len(separated)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


# Claims: each criterion is a pure function of the measurements --------------------------

EXACT_TOL = 1e-9
"""Relative tolerance on the constructions' exact numbers (float64 round-off; ours)."""
COSINE_TOL = 1e-4
MARGIN_TOL = 1e-3
OPEN_SET_MIN = 8
LEVEL = 0.95
SIGNIFICANCE = 0.05
MIN_CONTROL_KKT = 10
NOT_GLOBAL_GAP = 1e-3


def _close(measured: float, stated: float, tol: float = EXACT_TOL) -> bool:
    return bool(abs(measured - stated) <= tol * abs(stated))


def construction_holds(
    *,
    optimality: str,
    margin: float,
    stated_margin: float,
    kkt_residual: float,
    multipliers: Sequence[float],
    stated_multipliers: Sequence[float],
    gains: Sequence[float],
    stated_gains: Sequence[float],
    better_margin: float,
    stated_better_margin: float,
    probe_gain: float,
    search_margin: float,
) -> Judgement:
    """A construction is what it claims to be: a KKT point (residual, margin, multipliers to
    ``EXACT_TOL``) that the probe improves exactly when it is said not to be local; the
    stated gains along its direction and its stated better point are met; and a global one
    is not beaten by a multistart search (``search_margin``; nan when not searched)."""
    multipliers = np.asarray(multipliers, dtype=float)
    stated_multipliers = np.asarray(stated_multipliers, dtype=float)
    gains, stated_gains = np.asarray(gains, dtype=float), np.asarray(stated_gains, dtype=float)
    same_multipliers = (
        multipliers.shape == stated_multipliers.shape
        and len(stated_multipliers) > 0
        and bool(
            np.all(np.abs(multipliers - stated_multipliers) <= EXACT_TOL * stated_multipliers.max())
        )
    )
    checks = {
        "margin": _close(margin, stated_margin),
        "KKT residual": bool(kkt_residual <= EXACT_TOL),
        "multipliers": same_multipliers,
        "gains": gains.shape == stated_gains.shape
        and all(_close(m, s) and m > margin for m, s in zip(gains, stated_gains, strict=True)),
    }
    if optimality == "not local":
        checks["probe improves"] = bool(probe_gain > EXACT_TOL) and len(gains) > 0
    elif optimality in ("local", "global"):
        checks["probe finds nothing"] = bool(probe_gain <= EXACT_TOL)
    else:
        checks[f"optimality {optimality!r}"] = False
    if optimality == "global":
        checks["search finds nothing"] = bool(search_margin <= margin * (1.0 + EXACT_TOL))
    if not math.isnan(stated_better_margin):
        checks["better point"] = _close(better_margin, stated_better_margin) and bool(
            better_margin > margin
        )
    failed = [name for name, ok in checks.items() if not ok]
    ours = (
        f"gamma {margin:.9g}, KKT residual {kkt_residual:.1e}, lambda "
        f"{np.round(multipliers, 6).tolist()}; probe gain {probe_gain:.2e}"
    )
    if len(gains):
        ours += f"; gamma along d at eps .1/.01/.001: {np.round(gains, 8).tolist()}"
    if not math.isnan(stated_better_margin):
        ours += f"; better point gamma {better_margin:.6g}"
    if optimality == "global":
        ours += f"; multistart search best {search_margin:.9g}"
    return Judgement(ours, not failed, note=f"failed: {', '.join(failed)}" if failed else "")


def converges_to_construction(
    *, cosine: float, margin: float, stated_margin: float, status: str, expected_status: str
) -> Judgement:
    """Gradient descent ends in the construction's direction (``1 - cos <= COSINE_TOL``), at
    its margin (``MARGIN_TOL``), and the end point is classified as the construction is."""
    passed = (
        bool(1.0 - cosine <= COSINE_TOL)
        and bool(abs(margin - stated_margin) <= MARGIN_TOL)
        and status == expected_status
    )
    return Judgement(f"1 - cos {1.0 - cosine:.1e}, gamma {margin:.6g}, {status}", passed)


def open_set_converges(
    *, statuses: Sequence[str], margins: Sequence[float], stated_margin: float
) -> Judgement:
    """Every run from the ball ends at an improvable KKT point at the construction's margin
    (at least ``OPEN_SET_MIN`` runs)."""
    statuses, margins = list(statuses), np.asarray(margins, dtype=float)
    n = len(statuses)
    improvable = sum(s == IMPROVABLE for s in statuses)
    near = int(np.sum(np.abs(margins - stated_margin) <= MARGIN_TOL))
    passed = n >= OPEN_SET_MIN and len(margins) == n and improvable == n and near == n
    return Judgement(
        f"{improvable}/{n} improvable KKT end points, {near}/{n} at gamma {stated_margin:g}",
        passed,
    )


def _counts(statuses: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
    return {name: frequency(list(values)) for name, values in statuses.items()}


def _counts_text(counts: Mapping[str, tuple[int, int]]) -> str:
    return ", ".join(f"{name} {k}/{n}" for name, (k, n) in counts.items())


def improvable_frequency(
    *, statuses: Mapping[str, Sequence[str]], control_statuses: Mapping[str, Sequence[str]]
) -> Judgement:
    """The frequency of improvable KKT end points among the separated runs on the data sets
    with non-local KKT points: its Clopper-Pearson interval excludes 0, and it exceeds the
    classifier's false-positive rate on the control data sets (where every KKT point is
    local, so an "improvable" end point is a misclassification): one-sided Fisher exact
    test at ``SIGNIFICANCE``."""
    counts, controls = _counts(statuses), _counts(control_statuses)
    k, n = (sum(c[i] for c in counts.values()) for i in (0, 1))
    kc, nc = (sum(c[i] for c in controls.values()) for i in (0, 1))
    low, high = binomial_interval(k, n, LEVEL)
    c_low, c_high = binomial_interval(kc, nc, LEVEL)
    p = excess_frequency(k, n, kc, nc) if n and nc else 1.0
    passed = n > 0 and nc > 0 and low > 0.0 and p < SIGNIFICANCE
    return Judgement(
        f"{_counts_text(counts)}: {k}/{n} = {k / max(n, 1):.3g}, 95% CI [{low:.3g}, "
        f"{high:.3g}]; controls {_counts_text(controls)}: {kc}/{nc}, 95% CI [{c_low:.3g}, "
        f"{c_high:.3g}]; one-sided Fisher p = {p:.2g}",
        passed,
    )


def controls_unimprovable(*, control_statuses: Mapping[str, Sequence[str]]) -> Judgement:
    """No end point on a control data set is classified improvable, and each set has at
    least ``MIN_CONTROL_KKT`` end points classified as KKT points."""
    parts, passed = [], bool(control_statuses)
    for name, values in control_statuses.items():
        values = list(values)
        improvable = sum(s == IMPROVABLE for s in values)
        kkt = improvable + sum(s == UNIMPROVABLE for s in values)
        passed = passed and improvable == 0 and kkt >= MIN_CONTROL_KKT
        parts.append(f"{name} {improvable} improvable of {kkt} KKT end points ({len(values)} runs)")
    return Judgement("; ".join(parts), passed)


def _layer_text(layers: Sequence[str], norm_sq: np.ndarray, value: np.ndarray) -> str:
    return ", ".join(
        # not strict: a malformed measurement is reported as far as it goes, then fails
        f"{name} {a:.6g} vs {b:.6g}"
        for name, a, b in zip(layers, np.ravel(norm_sq), np.ravel(value), strict=False)
    )


def every_layer_global(
    *,
    layers: Sequence[str],
    norm_sq: Sequence[float],
    global_value: Sequence[float],
    probe_gain: Sequence[float],
) -> Judgement:
    """Every layer solves its restricted problem: ``||W_l||^2`` (at min margin 1) equals the
    exact optimum of ``(P_l)`` to ``EXACT_TOL``, and the numerical probe with the other
    layers frozen finds no better point (nan: undecided, which fails)."""
    norm_sq, value = np.asarray(norm_sq, dtype=float), np.asarray(global_value, dtype=float)
    gain = np.asarray(probe_gain, dtype=float)
    passed = (
        len(layers) > 0
        and norm_sq.shape == value.shape == gain.shape == (len(layers),)
        and bool(np.all(np.abs(norm_sq - value) <= EXACT_TOL * value))
        and bool(np.all(gain <= EXACT_TOL))
    )
    return Judgement(
        f"||W_l||^2 vs optimum of (P_l): {_layer_text(layers, norm_sq, value)}; largest probe "
        f"gain {np.max(gain, initial=-np.inf):.1e}",
        passed,
    )


def local_not_global(
    *,
    layers: Sequence[str],
    norm_sq: Sequence[float],
    local_value: Sequence[float],
    global_value: Sequence[float],
    probe_gain: Sequence[float],
    stated_norm_sq: float,
    stated_global_value: float,
) -> Judgement:
    """Per-layer local but not per-layer global: every layer is as short as any feasible
    point of the cones around it (exactly, to ``EXACT_TOL``) and the probe finds nothing
    nearby; the first layer's optimum is shorter by more than ``NOT_GLOBAL_GAP`` relative;
    and the first layer's two numbers are the stated ones (to ``EXACT_TOL``)."""
    norm_sq, local = np.asarray(norm_sq, dtype=float), np.asarray(local_value, dtype=float)
    value, gain = np.asarray(global_value, dtype=float), np.asarray(probe_gain, dtype=float)
    shapes = norm_sq.shape == local.shape == value.shape == gain.shape == (len(layers),)
    passed = (
        len(layers) > 0
        and shapes
        and bool(np.all(norm_sq <= local * (1.0 + EXACT_TOL)))
        and bool(np.all(gain <= EXACT_TOL))
        and bool(value[0] < norm_sq[0] * (1.0 - NOT_GLOBAL_GAP))
        and _close(norm_sq[0], stated_norm_sq)
        and _close(value[0], stated_global_value)
    )
    return Judgement(
        f"||W_l||^2 vs nearby optimum: {_layer_text(layers, norm_sq, local)}; vs global "
        f"optimum: {_layer_text(layers, norm_sq, value)}; largest probe gain "
        f"{np.max(gain, initial=-np.inf):.1e}",
        passed,
    )


def layer_not_local(
    *, layer: str, norm_sq: float, local_value: float, probe_gain: float
) -> Judgement:
    """A layer that is not a local solution of its restricted problem: a cone around it
    holds a feasible point shorter by more than ``EXACT_TOL`` relative, and the numerical
    probe finds a better point nearby too."""
    passed = bool(local_value < norm_sq * (1.0 - EXACT_TOL)) and bool(probe_gain > EXACT_TOL)
    return Judgement(
        f"{layer}: ||W||^2 {norm_sq:.6g}, shortest feasible point of the cones around it "
        f"{local_value:.6g}; probe gain {probe_gain:.2e}",
        passed,
    )


_PHENOMENON = "; the phenomenon: paper (abstract and introduction)"
_INTRO = "introduction, as summarized in chizat-vardi.md section 4"
_EXACT = f"to {EXACT_TOL:g} relative (ours, fixed before measuring: float64 round-off)"
# the construction's network and what the paper's abstract and introduction say of it
_CONSTRUCTION_TEXT = {
    "V1": (
        "depth-2 diagonal linear: a KKT point that is not a local optimum",
        "diagonal linear networks: a KKT point need not even be a local optimum",
    ),
    "V2": (
        "depth-2 diagonal linear, all weights nonzero: the KKT point is global",
        "linear networks with non-zero weights: optimality can be guaranteed",
    ),
    "V3": (
        "depth-3 diagonal linear, all weights nonzero: a KKT point that is not a local optimum",
        "diagonal linear networks: a KKT point need not even be a local optimum",
    ),
    "V3r": (
        "depth-3 diagonal ReLU, all weights and pre-activations nonzero: a KKT point that is "
        "not a local optimum",
        "deeper ReLU networks: local optimality is not guaranteed",
    ),
    "V4": (
        "depth-2 ReLU with zero pre-activations: a KKT point that is not a local optimum",
        "ReLU networks: a KKT point need not even be a local optimum",
    ),
    "V5": (
        "depth-2 ReLU with nonzero pre-activations: the KKT point is a local optimum but "
        "not a global one",
        "depth-2 ReLU networks with nonzero inputs: local, not global",
    ),
    "V6-L2": (
        "fully connected linear network of depth 2: the KKT point is global",
        "fully connected linear networks: every KKT point is a global optimum",
    ),
    "V6-L3": (
        "fully connected linear network of depth 3: the KKT point is global",
        "fully connected linear networks: every KKT point is a global optimum",
    ),
}


def _construction_spec(name: str) -> ClaimSpec:
    statement, phenomenon = _CONSTRUCTION_TEXT[name]
    return ClaimSpec(
        "vardi",
        f"construction-{name}",
        statement,
        f"ours (construction {name}, chizat-vardi.md section 5){_PHENOMENON}",
        construction_holds,
        f"margin, KKT residual, multipliers, stated gains and better point {_EXACT}; the "
        "probe finds a better point nearby exactly when the construction is not local; a "
        "global one is not beaten by a multistart search",
        paper_value=f"{phenomenon} (the construction and its numbers are ours)",
    )


def _stated_init_spec(name: str) -> ClaimSpec:
    return ClaimSpec(
        "vardi",
        f"gd-stated-init-{name}",
        f"gradient descent from the stated initialization of {name} converges to its KKT "
        f"point ({'not a local optimum' if STATED_ENDS[name] == IMPROVABLE else 'local'})",
        f"ours (construction {name} and its initialization){_PHENOMENON}",
        converges_to_construction,
        f"1 - cos <= {COSINE_TOL:g} to theta*, |gamma - gamma*| <= {MARGIN_TOL:g}, end point "
        "classified as the construction is (ours: the levels of chizat-vardi.md section 6, "
        "item 11, fixed before this reproduction)",
        paper_value="gradient flow converges to such KKT points (abstract)",
    )


CLAIMS = (
    *(_construction_spec(name) for name in CONSTRUCTIONS),
    *(_stated_init_spec(name) for name in STATED_ENDS),
    ClaimSpec(
        "vardi",
        "gd-open-set-V4",
        "gradient descent converges to the non-local KKT point of V4 from an open set of "
        "initializations",
        f"ours (construction V4; a ball of radius 0.02 around its initialization){_PHENOMENON}",
        open_set_converges,
        f"every run from the ball (at least {OPEN_SET_MIN}) ends at an improvable KKT point "
        f"with |gamma - 0.25| <= {MARGIN_TOL:g} (ours, fixed before measuring)",
        paper_value="depth-2 ReLU: gradient flow converges to a non-local KKT point from an "
        f"open set of initializations ({_INTRO})",
    ),
    ClaimSpec(
        "vardi",
        "gd-random-init-not-local",
        "from random initializations, gradient descent on the data sets with non-local KKT "
        "points (V1, V3, V4) ends at a KKT point the probe improves with a frequency above "
        "the classifier's false-positive rate",
        "ours (N(0, 1) initializations on constructions V1, V3, V4; controls V2, V5, V6)"
        + _PHENOMENON,
        improvable_frequency,
        f"Clopper-Pearson {LEVEL:.0%} interval of k/n excludes 0, and k/n exceeds the "
        f"control sets' rate by a one-sided Fisher exact test at {SIGNIFICANCE:g} (ours, "
        "fixed before measuring)",
        paper_value="gradient flow may converge to non-local KKT points (abstract); no "
        "frequency given",
    ),
    ClaimSpec(
        "vardi",
        "gd-random-init-controls",
        "on the data sets where every KKT point is local (V2, V5, V6-L2), no gradient "
        "descent end point is classified as improvable",
        "ours (N(0, 1) initializations on constructions V2, V5, V6-L2)" + _PHENOMENON,
        controls_unimprovable,
        f"0 improvable end points, and at least {MIN_CONTROL_KKT} KKT end points per set "
        "(ours, fixed before measuring)",
        paper_value=f"KKT points are optimal in these settings ({_INTRO})",
    ),
    ClaimSpec(
        "vardi",
        "per-layer-linear-global",
        "a fully connected linear network at its KKT point (V6, depths 2 and 3) is per-layer "
        "global: each layer solves the max-margin problem restricted to it",
        "ours (the per-layer definitions and construction V6; the paper's per-layer results "
        "are in its body, which was not read)",
        every_layer_global,
        f"||W_l||^2 at min margin 1 equals the optimum of the layer's convex QP {_EXACT}; the "
        "numerical probe with the other layers frozen finds no better point",
        paper_value=f"linear networks: per-layer optimal ({_INTRO}; definitions ours)",
    ),
    ClaimSpec(
        "vardi",
        "per-layer-diagonal-global",
        "diagonal linear networks at KKT points that are not local optima (V1, V3) are still "
        "per-layer global",
        "ours (the per-layer definitions and constructions V1, V3; the paper's per-layer "
        "results are in its body, which was not read)",
        every_layer_global,
        f"||W_l||^2 at min margin 1 equals the optimum of the layer's convex QP {_EXACT}; the "
        "numerical probe with the other layers frozen finds no better point",
        paper_value="per-layer optimality holds even when overall optimality is not "
        f"guaranteed ({_INTRO}; definitions ours)",
    ),
    ClaimSpec(
        "vardi",
        "per-layer-V5-local-not-global",
        "V5 (depth-2 ReLU, nonzero pre-activations) is per-layer local but not per-layer "
        "global: its first layer, ||W||^2 = 2 with v = (1, 1) fixed, could be 1.2101",
        "ours (the per-layer definitions and construction V5; the paper's per-layer results "
        "are in its body, which was not read)",
        local_not_global,
        f"every layer at most the optimum of the cones around it and no probe gain, the first "
        f"layer's global optimum shorter by more than {NOT_GLOBAL_GAP:g} relative, and the "
        f"numbers 2 and 1/(2 cos^2 50 deg) = 1.2101 {_EXACT}",
        paper_value="ReLU networks: per-layer local, not per-layer global "
        f"({_INTRO}; definitions ours)",
    ),
    ClaimSpec(
        "vardi",
        "per-layer-V4-not-local",
        "V4 (depth-2 ReLU, zero pre-activations) is not even per-layer local: its first "
        "layer can be shortened nearby",
        "ours (the per-layer definitions and construction V4; the paper's body was not read)",
        layer_not_local,
        f"a cone around the first layer holds a shorter feasible point (by more than "
        f"{EXACT_TOL:g} relative), and the numerical probe finds a better point nearby",
        paper_value=None,
    ),
)


# Measurements ---------------------------------------------------------------------------


def _sample_multipliers(item: Construction, certificate: Certificate) -> list[float]:
    """The certificate's multipliers summed per sample (one per sample)."""
    found = [0.0] * len(item.x)
    for (n, _), lam in zip(certificate.constraints, certificate.multipliers, strict=True):
        found[n] += float(lam)
    return found


def measure_construction(name: str, *, n_random: int, n_local: int, n_starts: int) -> dict:
    """What :func:`construction_holds` judges, for one construction."""
    c = construction(name)
    v = verify(c, n_random=n_random, n_local=n_local, tol=EXACT_TOL)
    certificate = v.kkt.certificates[0]
    search = math.nan
    if c.optimality == "global":
        search = nonconvex_max_margin(c.model, c.x, c.y, n_starts=n_starts, seed=1).margin
    nan = math.nan
    return {
        "optimality": c.optimality,
        "margin": v.margin,
        "stated_margin": c.margin,
        "kkt_residual": certificate.eps_rel,
        "multipliers": _sample_multipliers(c, certificate),
        "stated_multipliers": list(c.multipliers),
        "gains": [measured for measured, _ in v.gains.values()],
        "stated_gains": [stated for _, stated in v.gains.values()],
        "better_margin": nan if v.better_margin is None else v.better_margin,
        "stated_better_margin": nan if c.better_margin is None else c.better_margin,
        "probe_gain": v.probe.improvement,
        "search_margin": search,
    }


def measure_per_layer(name: str, *, n_random: int) -> dict:
    """Per-layer optimality of one construction's layers (nan where undecided)."""
    c = construction(name)
    layers = per_layer_optimality(c.model, c.x, c.y, n_random=n_random)

    def column(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    return {
        "layers": [f"{name}/{r.layer}" for r in layers],
        "method": [r.method for r in layers],
        "norm_sq": [r.norm_sq for r in layers],
        "local_value": column([r.local_value for r in layers]),
        "global_value": column([r.global_value for r in layers]),
        "probe_gain": [r.probe_gain for r in layers],
    }


def gd_end_points(
    name: str, theta0: torch.Tensor, schedule: Mapping[str, int], n_random: int = 100
) -> dict:
    """Train from each row of ``theta0`` on construction ``name``'s data; classify the ends."""
    c = construction(name)
    ends = batched_gd(c, theta0, **schedule)
    classified = [classify(c, theta, n_random=n_random) for theta in ends]
    return {
        "statuses": [e.status for e in classified],
        "margins": [e.margin for e in classified],
        "cosines": [_cosine(theta, c.theta) for theta in ends],
    }


def random_inits(name: str, n: int, seed: int) -> torch.Tensor:
    """``n`` i.i.d. N(0, 1) initializations for construction ``name``'s network."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(construction(name).theta), generator=generator, dtype=torch.float64)


def open_set_inits(n: int, seed: int = 1, radius: float = 0.02) -> torch.Tensor:
    """``n`` points on the sphere of ``radius`` around V4's stated initialization, which lies
    inside the open set (``w1 . x1 > 0 > w1 . x2``, ``w2 . x2 > 0 > w2 . x1``, ``v > 0``)."""
    generator = torch.Generator().manual_seed(seed)
    center = torch.tensor(STATED_INITS["V4"], dtype=torch.float64)
    noise = torch.randn(n, len(center), generator=generator, dtype=torch.float64)
    return center + radius * noise / noise.norm(dim=1, keepdim=True)


def _seeds(study: Study) -> dict[str, int]:
    # About 1 in 32 Gaussian initializations has V4's activation pattern (each neuron on one
    # sample, positive output weights), and about 1 in 6 of the runs that separate V4 end at
    # its non-local KKT point (18 of 112 at ci), so V4 gets most of the seeds. V1 and V3
    # reach theirs only from a set of measure zero (0 of 32 each at ci); they stay in the
    # count, which only makes the test harder to pass.
    return {
        "V1": study.at_scale(ci=32, cpu=64, full=256),
        "V3": study.at_scale(ci=32, cpu=64, full=256),
        "V4": study.at_scale(ci=256, cpu=1024, full=4096),
        "V2": study.at_scale(ci=32, cpu=64, full=256),
        "V5": study.at_scale(ci=96, cpu=256, full=1024),
        "V6-L2": study.at_scale(ci=32, cpu=64, full=256),
    }


def reproduce(study: Study) -> None:
    """Check the constructions, run gradient descent on their data sets, probe per layer.

    Examples
    --------
    >>> import tempfile
    >>> study = Study("vardi", "ci", tempfile.mkdtemp(), specs=list(CLAIMS))
    >>> reproduce(study)  # doctest: +SKIP
    >>> {c.verdict for c in study.claims}  # doctest: +SKIP
    {'PASS'}
    """
    torch.set_num_threads(1)
    probe = {
        "n_random": study.at_scale(ci=300, cpu=2000, full=20000),
        "n_local": study.at_scale(ci=2, cpu=5, full=10),
        "n_starts": study.at_scale(ci=4, cpu=10, full=20),
    }
    found = study.measured(
        "constructions",
        probe,
        lambda: {name: measure_construction(name, **probe) for name in CONSTRUCTIONS},
    )
    for name in CONSTRUCTIONS:
        study.judge(f"construction-{name}", **found[name])

    schedule = {
        "plain_steps": study.at_scale(ci=500, cpu=1000, full=5000),
        "log_steps": study.at_scale(ci=2000, cpu=4000, full=20000),
    }
    stated = study.measured(
        "stated-inits",
        {"schedule": schedule, "inits": STATED_INITS},
        lambda: {
            name: gd_end_points(name, torch.tensor([init], dtype=torch.float64), schedule)
            for name, init in STATED_INITS.items()
        },
    )
    for name, expected in STATED_ENDS.items():
        end = stated[name]
        study.judge(
            f"gd-stated-init-{name}",
            cosine=float(end["cosines"][0]),
            margin=float(end["margins"][0]),
            stated_margin=construction(name).margin,
            status=end["statuses"][0],
            expected_status=expected,
        )

    n_ball = study.at_scale(ci=16, cpu=64, full=256)
    ball = study.measured(
        "open-set",
        {"schedule": schedule, "n": n_ball, "radius": 0.02, "seed": 1},
        lambda: gd_end_points("V4", open_set_inits(n_ball), schedule),
    )
    study.judge(
        "gd-open-set-V4",
        statuses=ball["statuses"],
        margins=ball["margins"],
        stated_margin=construction("V4").margin,
    )

    seeds = _seeds(study)
    runs = study.measured(
        "random-inits",
        {"schedule": schedule, "seeds": seeds, "seed_base": 100},
        lambda: {
            name: gd_end_points(name, random_inits(name, n, 100 + offset), schedule)
            for offset, (name, n) in enumerate(seeds.items())
        },
    )
    for name in seeds:
        study.log(f"{name}: {frequency(runs[name]['statuses'])} improvable / separated")
    controls = {name: runs[name]["statuses"] for name in CONTROL_SETS}
    study.judge(
        "gd-random-init-not-local",
        statuses={name: runs[name]["statuses"] for name in NOT_LOCAL_SETS},
        control_statuses=controls,
    )
    study.judge("gd-random-init-controls", control_statuses=controls)

    layered = study.measured(
        "per-layer",
        {"n_random": probe["n_random"]},
        lambda: {
            name: measure_per_layer(name, n_random=probe["n_random"])
            for name in ("V1", "V3", "V4", "V5", "V6-L2", "V6-L3")
        },
    )

    def layers_of(*names: str, keys: Sequence[str]) -> dict:
        return {key: [v for name in names for v in list(layered[name][key])] for key in keys}

    global_keys = ("layers", "norm_sq", "global_value", "probe_gain")
    study.judge("per-layer-linear-global", **layers_of("V6-L2", "V6-L3", keys=global_keys))
    study.judge("per-layer-diagonal-global", **layers_of("V1", "V3", keys=global_keys))
    v5 = layers_of("V5", keys=(*global_keys, "local_value"))
    study.judge(
        "per-layer-V5-local-not-global",
        **v5,
        stated_norm_sq=2.0,
        stated_global_value=1.0 / (2.0 * math.cos(math.radians(50.0)) ** 2),
    )
    v4 = layered["V4"]
    study.judge(
        "per-layer-V4-not-local",
        layer=v4["layers"][0],
        norm_sq=float(v4["norm_sq"][0]),
        local_value=float(v4["local_value"][0]),
        probe_gain=float(v4["probe_gain"][0]),
    )
