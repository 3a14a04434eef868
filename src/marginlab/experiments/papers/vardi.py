"""Vardi, Shamir & Srebro 2022: KKT points of the max-margin problem need not be optimal.

The claims (``chizat-vardi.md`` sections 4-5) are checked in two ways:

- **constructions**: each of V1 ... V6 (:mod:`marginlab.measure.references.vardi`) is a KKT
  point to 1e-9 with the stated multipliers, and the local probe finds a strictly better
  nearby point exactly on the constructions the paper calls "not a local optimum";
- **gradient descent**: small nets trained on the constructions' data sets, from the
  summary's stated initializations, from a ball around the V4 one (the "open set"), and from
  random Gaussian initializations; each end point is classified by :func:`classify`, and we
  report how often gradient descent ends at a KKT point the probe can improve.

Gradient descent runs many seeds at once (:func:`batched_gd`): first plain gradient descent
on the mean logistic loss, which decides where each seed goes, then steps on ``log L``
normalized to a relative length that decays, which drives the loss to ``exp(-10^k)`` in a
few thousand steps so that the direction settles at its KKT point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

from marginlab.experiments.study import Study
from marginlab.losses import get_loss
from marginlab.measure.kkt import kkt_certificates
from marginlab.measure.margins import normalized_margin
from marginlab.measure.references.local_probe import local_probe
from marginlab.measure.references.vardi import CONSTRUCTIONS, Construction, construction, verify

NOT_SEPARATED = "not separated"
NOT_KKT = "not a KKT point"
IMPROVABLE = "improvable KKT point"
UNIMPROVABLE = "no better point found"

# What the summary says of each construction, and where it comes from (P: the paper's
# accessible text; R: the summary's reconstruction, checked by derivation).
PAPER_VALUES = {
    "V1": "not a local optimum (P, row 2)",
    "V2": "global optimum (P/R, row 3)",
    "V3": "not a local optimum (P/R, row 4)",
    "V3r": "not a local optimum (R, row 7)",
    "V4": "not a local optimum (P, row 5)",
    "V5": "local, not global (P/R, row 6)",
    "V6-L2": "global optimum (P, row 1)",
    "V6-L3": "global optimum (P, row 1)",
}
# The summary's stated initializations (section 5): V1's u1 = -v1 keeps w1 = u1 v1 at 0,
# V4's and V5's give each neuron one sample only.
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
LOGISTIC = get_loss("logistic")
NOT_LOCAL_SETS = ("V1", "V3", "V4")
CONTROL_SETS = ("V2", "V5", "V6-L2")


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

    Examples
    --------
    >>> c = construction("V2")
    >>> theta = batched_gd(c, 0.3 * torch.ones(1, 4, dtype=torch.float64), log_steps=200)
    >>> round(normalized_margin(c.model_at(theta[0]), c.x, c.y), 6)
    0.5
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


def frequency(endpoints: Sequence[Endpoint], status: str = IMPROVABLE) -> tuple[int, int]:
    """How many end points have ``status``, out of those that separated the data.

    Examples
    --------
    >>> frequency([Endpoint(IMPROVABLE, 0.25), Endpoint(NOT_SEPARATED, 0.0),
    ...            Endpoint(UNIMPROVABLE, 0.35)])
    (1, 2)
    """
    separated = [e for e in endpoints if e.status != NOT_SEPARATED]
    return sum(e.status == status for e in separated), len(separated)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def _constructions(study: Study) -> None:
    n_random = study.at_scale(ci=300, cpu=2000, full=20000)
    for name in CONSTRUCTIONS:
        c = construction(name)
        v = verify(c, n_random=n_random, n_local=study.at_scale(ci=2, cpu=5, full=10))
        cert = v.kkt.certificates[0]
        study.check(
            f"construction-{name}",
            c.claim,
            ours=(
                f"gamma {v.margin:.6g}, KKT residual {cert.eps_rel:.1e}, lambda error "
                f"{v.multipliers_error:.1e}; probe: {v.probe.verdict} "
                f"(gain {v.probe.improvement:.2e})"
            ),
            passed=v.confirmed,
            tolerance=(
                "KKT residual, margin and multipliers to 1e-9; probe finds a better point "
                "within 1e-2 exactly when not local"
            ),
            paper_value=PAPER_VALUES[name],
            note=f"{n_random} random perturbations and SLSQP searches; stated gains and "
            "better points re-measured",
        )


def _stated_inits(study: Study, schedule: dict) -> None:
    for name, expected in (("V1", IMPROVABLE), ("V4", IMPROVABLE), ("V5", UNIMPROVABLE)):
        c = construction(name)
        theta0 = torch.tensor([STATED_INITS[name]], dtype=torch.float64)
        theta = batched_gd(c, theta0, **schedule)[0]
        end = classify(c, theta)
        cosine = _cosine(theta, c.theta)
        study.check(
            f"gd-stated-init-{name}",
            f"gradient descent from the stated init of {name} converges to its KKT point, "
            f"which is {c.optimality}",
            ours=f"cos {1 - cosine:.1e} from 1, gamma {end.margin:.6g}, {end.status}",
            passed=cosine >= 0.9999
            and abs(end.margin - c.margin) < 1e-3
            and end.status == expected,
            tolerance="1 - cos <= 1e-4, |gamma - gamma*| < 1e-3, end point classified as claimed",
            paper_value=f"converges to theta* (gamma {c.margin:g})",
            note=f"init {STATED_INITS[name]}",
        )


def _open_set(study: Study, schedule: dict) -> None:
    n = study.at_scale(ci=16, cpu=64, full=256)
    c = construction("V4")
    generator = torch.Generator().manual_seed(1)
    # a ball of radius 0.02 stays inside the open set (w1 . x1 > 0 > w1 . x2, etc.)
    center = torch.tensor(STATED_INITS["V4"], dtype=torch.float64)
    noise = torch.randn(n, len(center), generator=generator, dtype=torch.float64)
    theta0 = center + 0.02 * noise / noise.norm(dim=1, keepdim=True)
    ends = [classify(c, t, n_random=100) for t in batched_gd(c, theta0, **schedule)]
    k, m = frequency(ends)
    near = sum(abs(e.margin - c.margin) < 1e-3 for e in ends)
    study.check(
        "gd-open-set-V4",
        "gradient descent converges to the non-local KKT point of V4 from an open set of "
        "initializations",
        ours=f"{k}/{n} improvable KKT end points, {near}/{n} at gamma 0.25",
        passed=k == n and m == n and near == n,
        tolerance="every init in a ball of radius 0.02 around the stated one",
        paper_value="an open set (P, row 5)",
    )


def _random_inits(study: Study, schedule: dict) -> None:
    seeds = {
        "V1": study.at_scale(ci=16, cpu=64, full=256),
        "V3": study.at_scale(ci=16, cpu=64, full=256),
        # About 1 in 30 Gaussian inits has V4's activation pattern (each neuron on one
        # sample, positive output weight), so V4 needs many seeds to see it.
        "V4": study.at_scale(ci=192, cpu=512, full=2048),
        "V2": study.at_scale(ci=16, cpu=64, full=256),
        "V5": study.at_scale(ci=48, cpu=192, full=1024),
        "V6-L2": study.at_scale(ci=16, cpu=64, full=256),
    }
    found: dict[str, tuple[int, int, int]] = {}
    for offset, (name, n) in enumerate(seeds.items()):
        c = construction(name)
        generator = torch.Generator().manual_seed(100 + offset)
        theta0 = torch.randn(n, len(c.theta), generator=generator, dtype=torch.float64)
        ends = [classify(c, t, n_random=100) for t in batched_gd(c, theta0, **schedule)]
        k, m = frequency(ends)
        found[name] = (k, m, n)
        study.log(f"{name}: {k}/{m} improvable ({n} seeds)")

    def text(names: Sequence[str]) -> str:
        return ", ".join(f"{x} {found[x][0]}/{found[x][1]} (of {found[x][2]})" for x in names)

    study.check(
        "gd-random-init-not-local",
        "from random initializations, gradient descent on the data sets where KKT points need "
        "not be local optima ends at a KKT point the probe improves for some seeds",
        ours=text(NOT_LOCAL_SETS),
        passed=sum(found[x][0] for x in NOT_LOCAL_SETS) > 0,
        tolerance="at least one improvable KKT end point among the separated seeds",
        paper_value=None,
        note="N(0, 1) inits; k/m = improvable among separated seeds; the paper gives no frequency",
    )
    study.check(
        "gd-random-init-controls",
        "on the data sets where every KKT point is local or global (V2, V5, V6), no gradient "
        "descent end point can be improved nearby",
        ours=text(CONTROL_SETS),
        passed=all(found[x][0] == 0 and found[x][1] > 0 for x in CONTROL_SETS),
        tolerance="0 improvable end points",
        paper_value="KKT => local (rows 1, 3, 6)",
    )


def reproduce(study: Study) -> None:
    """Check the constructions and run gradient descent on their data sets.

    Examples
    --------
    >>> import tempfile
    >>> study = Study("vardi", "ci", tempfile.mkdtemp())
    >>> reproduce(study)  # doctest: +SKIP
    >>> {c.verdict for c in study.claims}  # doctest: +SKIP
    {'PASS'}
    """
    torch.set_num_threads(1)
    _constructions(study)
    schedule = {
        "plain_steps": study.at_scale(ci=500, cpu=1000, full=5000),
        "log_steps": study.at_scale(ci=2000, cpu=4000, full=20000),
    }
    _stated_inits(study, schedule)
    _open_set(study, schedule)
    _random_inits(study, schedule)
