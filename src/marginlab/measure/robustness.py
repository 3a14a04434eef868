"""Adversarial robustness: attack distances, a certified margin bound, and both over training.

Lyu & Li (2020, App J.2; ``lyu-li.md`` A15, C.5, C.6) observe that training longer (smaller
loss, larger normalized margin) makes a network more robust. For a sample ``(x, y)`` in the
box ``X = [0, 1]^d`` the robust radius is ``R(x) = inf {||x' - x|| : x' in X misclassified}``
(0 for a misclassified ``x``), and the robust accuracy at ``eps`` is the fraction of samples
with ``R > eps``. Two bounds bracket ``R`` sample by sample:

- from above, an attack (foolbox 3): a verified adversarial example ``x'`` gives
  ``R <= ||x' - x||``. The minimal-norm attacks (C&W L2, DeepFool L2, FMN L2 and L-inf)
  give one distance per sample, hence the robust accuracy at every ``eps`` from one run;
  PGD L-inf runs at a list of ``eps`` and records the smallest distance it reached;
- from below, the margin (A15): ``R >= min_j s_j(x) / Lip(f_y - f_j)``, with each Lipschitz
  constant bounded by a product of layer spectral norms (:func:`certified_radius`).

Attacks run in the model's dtype (foolbox works in float64 as well as float32), on its
device unless told otherwise. Samples are misclassified when their margin is ``<= 0``, the
convention of :func:`marginlab.measure.margins.evaluate`.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eagerpy as ep
import foolbox as fb
import matplotlib
import numpy as np
import pandas as pd
import torch
from foolbox.devutils import atleast_kd, flatten
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn

from marginlab.config import validate
from marginlab.losses import get_loss
from marginlab.measure.margins import evaluate, margin_metrics, pairwise_margins
from marginlab.models.activations import Activation
from marginlab.models.base import Scale
from marginlab.runs.run import Run, load_run
from marginlab.runs.store import no_link

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NORMS = ("l2", "linf")
ATTACKS: Mapping[str, tuple[str, ...]] = {
    "l2": ("cw", "deepfool", "fmn", "best"),
    "linf": ("pgd", "fmn", "best"),
}
"""The attacks available for each norm; the first is the default. ``best`` runs every other
attack of the norm and keeps, sample by sample, the closest verified adversarial example."""

ATTACK_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    # Lyu & Li's C&W (C.5): 9 binary-search steps, <= 10000 Adam steps of lr 0.01 with an
    # abort-early check every tenth of them, initial const 1e-3, confidence 0.
    "cw": {
        "binary_search_steps": 9,
        "steps": 10000,
        "stepsize": 0.01,
        "initial_const": 1e-3,
        "abort_early": True,
    },
    "deepfool": {"steps": 50, "candidates": 10, "overshoot": 0.02},
    "fmn": {"steps": 300, "max_stepsize": 1.0, "gamma": 0.05, "overshoot": 0.01},
    # Lyu & Li's PGD (C.5): 100 steps of 0.1 eps, 10 random restarts.
    "pgd": {"steps": 100, "rel_stepsize": 0.1, "restarts": 10},
}
"""Each attack's options and their defaults (``options=`` overrides any of them)."""

DEFAULT_EPS: Mapping[str, tuple[float, ...]] = {
    "l2": (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0),
    "linf": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
}
"""Epsilons of the robust-accuracy columns (and of PGD) when none are given."""

# Lipschitz constants (in the L2 norm) of the elementwise activations that have one.
ACTIVATION_LIPSCHITZ: Mapping[str, Callable[[Mapping[str, Any]], float]] = {
    "relu": lambda params: 1.0,
    "identity": lambda params: 1.0,
    "leaky_relu": lambda params: max(1.0, abs(params["negative_slope"])),
    "softplus": lambda params: 1.0,
    "leaky_softplus": lambda params: 1.0,  # phi' = c + (1 - c) sigmoid in [c, 1]
}


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackResult:
    """Per-sample outcome of an attack.

    Attributes
    ----------
    norm, attack : str
        ``"l2"``/``"linf"`` and the attack's name.
    distances : numpy.ndarray
        ``(N,)`` float64 distance to the verified adversarial example: 0 for a sample
        misclassified to begin with, ``inf`` where the attack found none (robust).
    adversarials : torch.Tensor
        ``(N, ...)`` on the CPU: the verified adversarial example, or the input itself
        where there is none.
    misclassified : numpy.ndarray
        ``(N,)`` bool: misclassified before any attack.
    eps_attacked : tuple of float or None
        The epsilons a fixed-epsilon attack (PGD) tried; ``None`` for minimal-norm attacks.
    seconds : float
        Wall time of the attack.
    found_by : tuple of str or None
        ``best`` only: per sample, the attack whose example is kept (``""`` where none
        was needed or found).
    """

    norm: str
    attack: str
    distances: np.ndarray
    adversarials: torch.Tensor
    misclassified: np.ndarray
    eps_attacked: tuple[float, ...] | None
    seconds: float
    found_by: tuple[str, ...] | None = None

    @property
    def success(self) -> np.ndarray:
        """``(N,)`` bool: a verified adversarial example exists (or none was needed)."""
        return np.isfinite(self.distances)

    @property
    def median_distance(self) -> float:
        return float(np.median(self.distances))

    def robust_accuracy(self, eps: float | Sequence[float]) -> np.ndarray:
        """Fraction of samples whose attack distance exceeds each ``eps``.

        An upper bound on the true robust accuracy (the attack may miss closer examples).
        A fixed-epsilon attack knows nothing beyond the largest epsilon it tried.

        Examples
        --------
        >>> r = AttackResult("l2", "cw", np.array([0.0, 0.5, np.inf]), torch.zeros(3, 2),
        ...                  np.array([True, False, False]), None, 0.0)
        >>> r.robust_accuracy([0.0, 0.4, 1.0]).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
        """
        eps_array = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        if self.eps_attacked is not None and eps_array.max() > max(self.eps_attacked) * (1 + 1e-12):
            raise ValueError(
                f"eps: {self.attack} ran at eps <= {max(self.eps_attacked):g} only; "
                f"ask for robust accuracy up to that, or attack at larger eps"
            )
        return (self.distances[None, :] > eps_array[:, None]).mean(axis=1)


def paired_changes(
    distances: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
    eps: Sequence[float],
) -> pd.DataFrame:
    """How the same samples' robustness changed from each checkpoint to the next.

    Two checkpoints' robust accuracies can differ by a handful of samples, and the
    question a reader asks is whether the difference is more than chance. Since the samples
    are the same, the exact sign test (McNemar's test at a fixed ``eps``) answers it: under
    "no change", a sample that moved is equally likely to have moved either way.

    Parameters
    ----------
    distances : mapping or sequence of pairs
        Checkpoint label -> ``(N,)`` attack distances of the same samples, in training
        order (``inf``: no adversarial example found).
    eps : sequence of float
        Epsilons at which to compare the robust accuracy.

    Returns
    -------
    pandas.DataFrame
        One row per consecutive pair and measure: ``from``, ``to``, ``at`` (``distance``,
        or ``eps=<eps>``), ``more_robust`` and ``less_robust`` (samples whose distance rose
        or fell; at an ``eps``, samples robust only at ``to`` or only at ``from``), and
        ``p_value``: the two-sided exact sign test of ``more_robust`` against
        ``less_robust`` (1 where nothing moved). Samples that did not move count for neither.

    Examples
    --------
    >>> table = paired_changes({"a": np.array([0.1, 0.2, 0.3]),
    ...                         "b": np.array([0.2, 0.3, 0.25])}, eps=[0.15])
    >>> table[["at", "more_robust", "less_robust"]].values.tolist()
    [['distance', 2, 1], ['eps=0.15', 1, 0]]
    """
    from scipy.stats import binomtest

    def row(before: str, after: str, at: str, up: int, down: int) -> dict[str, Any]:
        return {
            "from": before,
            "to": after,
            "at": at,
            "more_robust": up,
            "less_robust": down,
            "p_value": float(binomtest(up, up + down).pvalue) if up + down else 1.0,
        }

    pairs = list(distances.items() if isinstance(distances, Mapping) else distances)
    rows = []
    for (before, d0), (after, d1) in zip(pairs, pairs[1:], strict=False):
        d0, d1 = np.asarray(d0, dtype=np.float64), np.asarray(d1, dtype=np.float64)
        rows.append(row(before, after, "distance", int((d1 > d0).sum()), int((d1 < d0).sum())))
        for e in eps:
            up, down = int(((d1 > e) & (d0 <= e)).sum()), int(((d0 > e) & (d1 <= e)).sum())
            rows.append(row(before, after, f"eps={e:g}", up, down))
    columns = ["from", "to", "at", "more_robust", "less_robust", "p_value"]
    return pd.DataFrame(rows, columns=columns)


# --- attacks ---------------------------------------------------------------------------------


class _Overshoot:
    """FMN whose epsilon-ball is enlarged by ``1 + overshoot``.

    Before it finds an adversarial example, FMN sets the ball's radius to the linear
    estimate ``||delta|| + |margin| / ||grad||_*``, which is exact on a piecewise-linear net:
    the iterate then converges onto the decision boundary from the inside and, in float64,
    often never crosses it (58% of samples were never broken on a digits MLP). The slack lets
    it cross; the radius then shrinks back onto the boundary as usual.
    """

    def __init__(self, *, overshoot: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.overshoot = overshoot


class _L2FMN(_Overshoot, fb.attacks.L2FMNAttack):
    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        # foolbox 3.3.4 (and its master) scales by `norms / norms`, i.e. never projects.
        norms = ep.maximum(flatten(x - x0).norms.l2(axis=-1), 1e-12)
        factor = ep.minimum(1, epsilon * (1 + self.overshoot) / norms)
        return x0 + (x - x0) * atleast_kd(factor, x.ndim)


class _LinfFMN(_Overshoot, fb.attacks.LInfFMNAttack):
    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        return super().project(x, x0, epsilon * (1 + self.overshoot))


class _MarginLinfPGD(fb.attacks.LinfPGD):
    """L-inf PGD ascending the margin loss ``max_{j != y} z_j - z_y`` (Lyu & Li's PGD loss is
    of this C&W type): the cross-entropy gradient is proportional to the loss itself, which
    underflows at the 1e-300 losses of late checkpoints, so PGD on it would not move."""

    def get_loss_fn(self, model: fb.Model, labels: ep.Tensor) -> Callable[[ep.Tensor], ep.Tensor]:
        rows = range(len(labels))

        def loss_fn(inputs: ep.Tensor) -> ep.Tensor:
            logits = model(inputs)
            best_other = (logits - ep.onehot_like(logits, labels, value=ep.inf)).max(axis=-1)
            return (best_other - logits[rows, labels]).sum()

        return loss_fn


class _TwoLogits(nn.Module):
    """A single-output binary model ``f`` as the two logits ``[-f/2, f/2]``: class 1 wins
    iff ``f > 0`` and the logit gap is ``f``, the binary margin of ``pairwise_margins``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.model(x) / 2
        return torch.cat([-half, half], dim=1)


Batch = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_norm_attack(norm: str, attack: str | None) -> str:
    """Validate ``norm`` and ``attack``; return the attack (the norm's default for None)."""
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    if attack is None:
        return ATTACKS[norm][0]
    if attack not in ATTACKS[norm]:
        raise ValueError(
            f"attack: {attack!r} does not attack the {norm} norm; for {norm} choose one of "
            f"{ATTACKS[norm]}"
        )
    return attack


def _attack_settings(attack: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if attack == "best":  # options of the attacks it runs, as ``attack.option``
        settings = {}
        for key, value in (options or {}).items():
            name, _, option = key.partition(".")
            if name not in ATTACK_OPTIONS or not option:
                raise ValueError(
                    f"options: {key!r}; the options of best name their attack, such as "
                    f"cw.steps=1000 (attacks: {', '.join(ATTACK_OPTIONS)})"
                )
            settings[key] = _attack_settings(name, {option: value})[option]
        return settings
    defaults = ATTACK_OPTIONS[attack]
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise ValueError(
            f"options: {unknown[0]!r} is not an option of {attack}; its options and defaults: "
            + ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        )
    return {**defaults, **(options or {})}


def _check_eps(eps: Sequence[float] | None, norm: str) -> tuple[float, ...]:
    values = tuple(float(e) for e in (DEFAULT_EPS[norm] if eps is None else eps))
    if not values or any(not math.isfinite(e) or e < 0 for e in values):
        raise ValueError(f"eps: expected finite non-negative epsilons, got {eps!r}")
    return tuple(sorted(set(values)))


def _is_adversarial(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return pairwise_margins(model(x_adv), y).min(dim=1).values <= 0


def _verify(
    model: nn.Module,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """Which ``x_adv`` are finite, inside the box and misclassified."""
    flat = x_adv.flatten(1)
    inside = torch.isfinite(flat).all(1) & (flat >= bounds[0]).all(1) & (flat <= bounds[1]).all(1)
    return inside & _is_adversarial(model, x_adv, y)


def _distances(x: torch.Tensor, x_adv: torch.Tensor, norm: str) -> torch.Tensor:
    order = 2 if norm == "l2" else math.inf
    return (x_adv - x).double().flatten(1).norm(p=order, dim=1)


def _batch_runner(
    attack: str,
    norm: str,
    settings: dict[str, Any],
    fmodel: fb.PyTorchModel,
    model: nn.Module,
    eps: tuple[float, ...],
    bounds: tuple[float, float],
) -> Batch:
    """Return ``run(x, y) -> candidates``: the attack on one batch, through foolbox."""
    if attack == "pgd":
        options = {k: v for k, v in settings.items() if k != "restarts"}
        return _pgd_runner(
            _MarginLinfPGD(**options), settings["restarts"], fmodel, model, eps, bounds
        )
    if attack == "cw":
        minimizer: fb.attacks.MinimizationAttack = fb.attacks.L2CarliniWagnerAttack(**settings)
    elif attack == "deepfool":
        minimizer = fb.attacks.L2DeepFoolAttack(**settings)
    else:
        minimizer = (_L2FMN if norm == "l2" else _LinfFMN)(**settings)

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return minimizer(fmodel, x, y, epsilons=None)[0]

    return run


def _pgd_runner(
    pgd: _MarginLinfPGD,
    restarts: int,
    fmodel: fb.PyTorchModel,
    model: nn.Module,
    eps: tuple[float, ...],
    bounds: tuple[float, float],
) -> Batch:
    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adversarials = x.clone()
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        # Ascending eps, and only the samples still standing: a sample broken at a small
        # eps has its distance, and restarts stop once a sample falls.
        for epsilon in eps:
            for _ in range(restarts):
                todo = (~found).nonzero().squeeze(1)
                if len(todo) == 0:
                    return adversarials
                _, clipped, _ = pgd(fmodel, x[todo], y[todo], epsilons=epsilon)
                ok = _verify(model, clipped, y[todo], bounds)
                adversarials[todo[ok]] = clipped[ok]
                found[todo[ok]] = True
        return adversarials

    return run


@contextmanager
def _seeded_eval(model: nn.Module, seed: int, device: torch.device) -> Iterator[None]:
    """Eval mode and a seeded RNG (random starts) for the block; both restored after it."""
    was_training = model.training
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout stays for results (the CLI's table)
        disable=not enabled,
    )


def _placement(model: nn.Module, x: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    parameter = next(iter(model.parameters()), None)
    reference = x if parameter is None else parameter
    return reference.device, reference.dtype


def run_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: str | None = None,
    norm: str = "l2",
    eps: Sequence[float] | None = None,
    options: Mapping[str, Any] | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool = True,
    description: str | None = None,
) -> AttackResult:
    """Attack every sample of ``(x, y)`` and return verified per-sample distances.

    Each adversarial example foolbox returns is checked (finite, inside ``bounds``,
    margin ``<= 0``) and its distance recomputed here in float64; one that fails counts
    as no example (distance ``inf``, robust). Misclassified samples get distance 0 and
    are not attacked.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits ``(N, C)``, or ``(N, 1)`` for a binary model (attacked as the two
        logits ``[-f/2, f/2]``). Attacked in its own dtype.
    x, y : torch.Tensor
        Inputs inside ``bounds`` and class indices.
    attack : str, optional
        One of :data:`ATTACKS` ``[norm]``; default C&W for ``l2``, PGD for ``linf``;
        ``best`` runs them all and keeps the closest example per sample (:func:`closest`).
    norm : {"l2", "linf"}
    eps : sequence of float, optional
        PGD only: the epsilons to try (default :data:`DEFAULT_EPS` ``[norm]``).
    options : mapping, optional
        Overrides of :data:`ATTACK_OPTIONS` ``[attack]``; for ``best``, keyed by attack
        and option, such as ``{"cw.steps": 1000}``.
    batch_size : int
        Samples per foolbox call (Lyu & Li: 128).
    device : str or torch.device, optional
        Where to attack; default the model's device. Another device attacks a copy.
    bounds : (float, float)
        The input box.
    seed : int
        Seeds random starts (PGD); the global RNG is left as it was.
    progress : bool
        Show a progress bar.
    description : str, optional
        Label of the progress bar.

    Returns
    -------
    AttackResult

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(4, 2, bias=False).double()
    >>> x = torch.rand(8, 4, dtype=torch.float64)
    >>> y = model(x).argmax(1)
    >>> result = run_attack(model, x, y, attack="deepfool", progress=False)
    >>> bool(result.success.all()), bool((result.distances > 0).all())
    (True, True)
    """
    attack = _check_norm_attack(norm, attack)
    settings = _attack_settings(attack, options)
    eps_tuple = _check_eps(eps, norm)
    if attack == "best":
        results = []
        for name in ATTACKS[norm][:-1]:
            own = {k.partition(".")[2]: v for k, v in settings.items() if k.startswith(name + ".")}
            results.append(
                run_attack(
                    model,
                    x,
                    y,
                    attack=name,
                    norm=norm,
                    eps=eps_tuple,
                    options=own,
                    batch_size=batch_size,
                    device=device,
                    bounds=bounds,
                    seed=seed,
                    progress=progress,
                    description=f"{description or 'best'}: {name}",
                )
            )
        return closest(results)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    if len(x) != len(y):
        raise ValueError(f"x, y: {len(x)} inputs but {len(y)} labels")
    own_device, dtype = _placement(model, x)
    device = torch.device(device) if device is not None else own_device
    if device != own_device:
        model = copy.deepcopy(model).to(device)
    x = x.to(device=device, dtype=dtype)
    y = y.to(device)
    if len(x) and (x.min() < bounds[0] or x.max() > bounds[1]):
        raise ValueError(
            f"x: inputs must lie in the box {list(bounds)}, got values in "
            f"[{float(x.min()):g}, {float(x.max()):g}]; rescale them or pass bounds="
        )

    start = time.perf_counter()
    adversarials = x.clone()
    distances = torch.zeros(len(x), dtype=torch.float64, device=device)
    with _seeded_eval(model, seed, device), _progress(progress) as bar:
        task = bar.add_task(description or f"{attack} {norm}", total=len(x))
        misclassified = torch.zeros(len(x), dtype=torch.bool, device=device)
        for i, part in _chunks(x, batch_size):
            misclassified[i : i + len(part)] = _is_adversarial(model, part, y[i : i + len(part)])
        bar.advance(task, int(misclassified.sum()))
        with torch.no_grad():
            binary = model(x[:1]).shape[1] == 1
        classifier = _TwoLogits(model).eval() if binary else model
        fmodel = fb.PyTorchModel(classifier, bounds=bounds, device=device)
        run = _batch_runner(attack, norm, settings, fmodel, model, eps_tuple, bounds)
        todo = (~misclassified).nonzero().squeeze(1)
        for start_index in range(0, len(todo), batch_size):
            index = todo[start_index : start_index + batch_size]
            candidates = run(x[index], y[index]).detach()
            ok = _verify(model, candidates, y[index], bounds)
            adversarials[index[ok]] = candidates[ok]
            distances[index] = torch.where(
                ok, _distances(x[index], candidates, norm), torch.tensor(math.inf, device=device)
            )
            bar.advance(task, len(index))
    return AttackResult(
        norm=norm,
        attack=attack,
        distances=distances.cpu().numpy(),
        adversarials=adversarials.cpu(),
        misclassified=misclassified.cpu().numpy(),
        eps_attacked=eps_tuple if attack == "pgd" else None,
        seconds=time.perf_counter() - start,
    )


def closest(results: Sequence[AttackResult]) -> AttackResult:
    """Combine attacks on the same samples: per sample, the closest verified example.

    Every example is verified, so the smallest distance is still an upper bound on the
    robust radius, and the tightest of them. Fixed-epsilon attacks (PGD) combined with a
    minimal-norm one leave no epsilon limit: the minimal-norm attack covers the rest.

    Examples
    --------
    >>> a = AttackResult("l2", "cw", np.array([0.5, np.inf]), torch.zeros(2, 1),
    ...                  np.array([False, False]), None, 1.0)
    >>> b = AttackResult("l2", "fmn", np.array([0.7, 0.9]), torch.ones(2, 1),
    ...                  np.array([False, False]), None, 2.0)
    >>> best = closest([a, b])
    >>> best.distances.tolist(), best.found_by, best.adversarials.flatten().tolist()
    ([0.5, 0.9], ('cw', 'fmn'), [0.0, 1.0])
    """
    distances = np.stack([r.distances for r in results])
    winner = distances.argmin(axis=0)
    rows = torch.as_tensor(winner)
    stacked = torch.stack([r.adversarials for r in results])
    kept = distances.min(axis=0)
    misclassified = results[0].misclassified
    names = tuple(
        "" if misclassified[i] or not np.isfinite(kept[i]) else results[w].attack
        for i, w in enumerate(winner)
    )
    minimal = [r.eps_attacked is None for r in results]
    return AttackResult(
        norm=results[0].norm,
        attack="best",
        distances=kept,
        adversarials=stacked[rows, torch.arange(len(rows))],
        misclassified=misclassified,
        eps_attacked=None if any(minimal) else results[0].eps_attacked,
        seconds=sum(r.seconds for r in results),
        found_by=names,
    )


def _chunks(x: torch.Tensor, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    for start in range(0, len(x), size):
        yield start, x[start : start + size]


# --- the certified lower bound ----------------------------------------------------------------


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _conv_norm_bound(conv: nn.Conv2d, in_shape: Sequence[int]) -> float:
    """Upper bound on the L2 operator norm of ``conv`` (no bias) on ``in_shape`` inputs.

    The zero-padded convolution is a restriction of the circular one on a grid large enough
    that nothing wraps around (embedding and restriction, strides included, do not increase
    norms), and the circular one is block-diagonalised by the 2-D DFT: its norm is the
    largest spectral norm of the ``c_out x c_in`` kernel transforms (Sedghi et al. 2019).
    Power iteration would only approach the norm from below, which could make the radius
    bound unsound.
    """
    if conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError(
            f"model: the Lipschitz bound handles zero-padded, ungrouped Conv2d only; got {conv}"
        )
    kernel_size, dilation = _pair(conv.kernel_size), _pair(conv.dilation)
    spans = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
    if conv.padding == "same":
        pads = spans
    elif conv.padding == "valid":
        pads = [0, 0]
    else:
        pads = list(_pair(conv.padding))
    grid = [n + max(p, s) for n, p, s in zip(in_shape[-2:], pads, spans, strict=True)]
    weight = conv.weight.detach().to(device="cpu", dtype=torch.float64)
    placed = weight.new_zeros(*weight.shape[:2], *grid)
    placed[:, :, : spans[0] + 1 : dilation[0], : spans[1] + 1 : dilation[1]] = weight
    spectrum = torch.fft.fft2(placed).permute(2, 3, 0, 1)
    return float(torch.linalg.matrix_norm(spectrum, ord=2).max())


def _pool_lipschitz(pool: nn.MaxPool2d | nn.AvgPool2d) -> float:
    kernel = _pair(pool.kernel_size)
    stride = _pair(pool.stride or pool.kernel_size)
    if isinstance(pool, nn.MaxPool2d) and _pair(pool.dilation) != (1, 1):
        raise ValueError(f"model: no Lipschitz bound for a dilated max pool ({pool})")
    if isinstance(pool, nn.AvgPool2d) and (_pair(pool.padding) != (0, 0) or pool.ceil_mode):
        raise ValueError(f"model: no Lipschitz bound for a padded or ceil-mode avg pool ({pool})")
    # Windows sharing one input pixel, at most.
    overlap = math.ceil(kernel[0] / stride[0]) * math.ceil(kernel[1] / stride[1])
    if isinstance(pool, nn.MaxPool2d):
        return math.sqrt(overlap)  # |max a - max b| <= ||a - b||_2 window by window
    return math.sqrt(overlap / (kernel[0] * kernel[1]))  # |mean a| <= ||a||_2 / sqrt(k^2)


def _layer_lipschitz(layer: nn.Module, in_shape: Sequence[int]) -> float:
    """Upper bound on the L2 Lipschitz constant of one layer (its bias does not matter)."""
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))
    if isinstance(layer, nn.Conv2d):
        return _conv_norm_bound(layer, in_shape)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool_lipschitz(layer)
    if isinstance(layer, (nn.Flatten, nn.Identity, nn.ReLU)):
        return 1.0
    if isinstance(layer, Scale):
        return abs(layer.factor)
    if isinstance(layer, nn.LeakyReLU):
        return max(1.0, abs(layer.negative_slope))
    if isinstance(layer, Activation) and layer.name in ACTIVATION_LIPSCHITZ:
        return ACTIVATION_LIPSCHITZ[layer.name](layer.params)
    raise ValueError(
        f"model: no Lipschitz bound for layer {layer}; the bound covers Linear, Conv2d, "
        f"max/avg pooling, Flatten, Scale and the activations {sorted(ACTIVATION_LIPSCHITZ)}"
    )


def _sequential_layers(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return list(model)
    body = getattr(model, "body", None)
    if isinstance(body, nn.Sequential):
        return list(body)
    raise ValueError(
        f"model: the Lipschitz bound needs a sequential network (an nn.Sequential, or a zoo "
        f"model with a .body); got {type(model).__name__}"
    )


def lipschitz_constants(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """Upper bounds ``L_ij`` on the L2 Lipschitz constants of the logit gaps ``f_i - f_j``.

    The output layer enters through its rows, ``||w_i - w_j||_2``; every layer before it
    through a bound on its own constant (spectral norm of a linear or convolutional layer,
    1 for ReLU and non-overlapping max pooling): ``L_ij = ||w_i - w_j|| prod_l Lip_l``.
    A binary single-output model counts as the two logits ``[-f/2, f/2]``.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Sequential`` or a zoo model (its ``.body``) ending in a linear layer
        (possibly followed by a :class:`~marginlab.models.base.Scale`).
    input_shape : sequence of int
        One input's shape, e.g. ``(1, 8, 8)``.

    Returns
    -------
    torch.Tensor
        ``(C, C)`` float64 on the CPU, zero on the diagonal.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False))
    >>> _ = net[0].weight.data.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    >>> lipschitz_constants(net, (2,)).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    layers = _sequential_layers(model)
    linear = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    if not linear:
        raise ValueError("model: the Lipschitz bound needs a final nn.Linear layer")
    last = linear[-1]
    output_scale = 1.0
    for layer in layers[last + 1 :]:
        if not isinstance(layer, (Scale, nn.Identity)):
            raise ValueError(
                f"model: only Scale may follow the output layer for the Lipschitz bound; "
                f"found {layer}"
            )
        output_scale *= _layer_lipschitz(layer, ())
    weight = layers[last].weight.detach()
    h = torch.zeros(1, *input_shape, dtype=weight.dtype, device=weight.device)
    chain = 1.0
    with torch.no_grad():
        for layer in layers[:last]:
            chain *= _layer_lipschitz(layer, tuple(h.shape[1:]))
            h = layer(h)
    weight = weight.to(device="cpu", dtype=torch.float64) * output_scale
    if weight.shape[0] == 1:
        weight = torch.cat([-weight / 2, weight / 2])
    gaps = (weight[:, None, :] - weight[None, :, :]).norm(dim=2)
    return chain * gaps


def certified_radius(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "l2",
    batch_size: int = 4096,
) -> np.ndarray:
    """Per-sample lower bound on the robust radius from the margin (Lyu & Li A15).

    ``R_n >= min_{j != y_n} s_nj / L_{y_n j}`` in L2, with ``s_nj = f_{y_n}(x_n) - f_j(x_n)``
    and ``L`` from :func:`lipschitz_constants`: a perturbation shorter than that cannot close
    any margin. For L-inf, ``||d||_2 <= sqrt(dim) ||d||_inf`` divides the bound by
    ``sqrt(dim)``. Misclassified samples get 0. The box is ignored, which only makes the bound
    smaller. The bound is invariant to rescaling the parameters of a homogeneous network.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`lipschitz_constants`.
    x, y : torch.Tensor
        Inputs and class indices.
    norm : {"l2", "linf"}
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64, ``>= 0``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False)).double()
    >>> _ = net[0].weight.data.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> round(float(certified_radius(net, x, torch.tensor([0]))[0]), 6)  # sqrt(2) / 2
    0.707107
    """
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    lipschitz = lipschitz_constants(model, tuple(x.shape[1:]))
    radii = []
    with torch.no_grad():
        for start, part in _chunks(x, batch_size):
            labels = y[start : start + batch_size]
            margins = pairwise_margins(model(part), labels).cpu()
            labels = labels.cpu()
            if margins.shape[1] == 1:
                pair = lipschitz[0, 1].expand(len(labels), 1)
            else:
                others = ~nn.functional.one_hot(labels, lipschitz.shape[0]).bool()
                pair = lipschitz[labels][others].view(len(labels), -1)
            ratio = torch.nan_to_num(margins / pair, nan=0.0, posinf=math.inf, neginf=0.0)
            radii.append(ratio.min(dim=1).values.clamp(min=0.0))
    radius = torch.cat(radii).numpy() if radii else np.zeros(0)
    if norm == "linf":
        radius = radius / math.sqrt(math.prod(x.shape[1:]))
    return radius


# --- along training ---------------------------------------------------------------------------


def _parse_checkpoint(spec: str | int | float) -> str | int | float:
    """``"last"``, an epoch (``500``, ``"500"``) or a loss level (``1e-20``, ``"1e-20"``).

    A level stays text: :meth:`Run.checkpoint` reads it, and ``"1e-882"`` has no float64.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return spec
    text = str(spec).strip()
    if text.isascii() and text.isdigit():  # "²" is a digit that int() refuses
        return int(text)
    try:
        float(text)
    except ValueError:
        if text != "last":
            raise ValueError(
                f"checkpoints: {spec!r} is neither 'last', an epoch (e.g. 500) nor a loss "
                f"level (e.g. 1e-20)"
            ) from None
    return text


def result_paths(run_dir: str | os.PathLike, norm: str, attack: str, split: str) -> dict[str, Path]:
    """The ``json``, ``csv`` and ``png`` files :func:`robustness_along_training` writes.

    Examples
    --------
    >>> result_paths("runs/r", "l2", "cw", "train")["csv"].name
    'robustness-l2-cw-train.csv'
    """
    stem = f"robustness-{norm}-{attack}-{split}"
    return {suffix: Path(run_dir) / f"{stem}.{suffix}" for suffix in ("json", "csv", "png")}


def eps_column(eps: float) -> str:
    """Name of the table column of the robust accuracy at ``eps`` (``robust_acc@0.5``)."""
    return f"robust_acc@{eps:g}"


def robustness_along_training(
    run: Run | str | os.PathLike,
    checkpoints: Sequence[str | int | float] = ("1e-10", "1e-20", "last"),
    *,
    split: str = "train",
    n: int = 2000,
    seed: int = 0,
    norm: str = "l2",
    attack: str | None = None,
    eps: Sequence[float] | None = None,
    options: Mapping[str, Any] | None = None,
    batch_size: int = 128,
    device: str = "cpu",
    progress: bool = True,
    write: bool = True,
) -> pd.DataFrame:
    """Attack the same samples at several checkpoints of a run (Lyu & Li Table 1, Fig 8).

    Each checkpoint is ``"last"``, an epoch, or a loss level such as ``1e-20`` (the first
    kept checkpoint whose mean training loss is below it; see :meth:`Run.checkpoint`).

    Parameters
    ----------
    run : Run or path
        The run.
    checkpoints : sequence
        Checkpoints to attack, in the order of the table.
    split : {"train", "test"}
    n : int
        Samples, drawn once without replacement with ``seed`` (all if the split is smaller).
    seed : int
        Seeds the sample draw and the attacks' random starts.
    norm, attack, eps, options, batch_size
        As for :func:`run_attack`; ``eps`` also sets the robust-accuracy columns.
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    progress : bool
        Show a progress bar per checkpoint.
    write : bool
        Write ``robustness-<norm>-<attack>-<split>.json``, ``.csv`` and ``.png`` into the
        run directory (:func:`result_paths`). The JSON also keeps the sample indices and
        every sample's distance and lower bound (``null`` = no adversarial example found).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``checkpoint``, ``epoch``, ``log10_loss`` (training loss,
        mean), ``normalized_margin`` (``q_min / rho^L`` on the training set), ``accuracy``
        (of the attacked samples), ``robust_acc@<eps>`` per epsilon, ``median_distance``,
        ``median_lower_bound`` (NaN where the network admits no bound). The JSON also
        holds, under ``paired``, the :func:`paired_changes` from each checkpoint to the next.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> config = {"data": {"name": "digits", "classes": [0, 1]},
    ...           "model": {"kind": "mlp", "hidden": [8]},
    ...           "train": {"max_epochs": 30, "target_log10_loss": None}}
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> table = robustness_along_training(path, ["last"], n=20, attack="deepfool",
    ...                                   progress=False, write=False)
    >>> table["checkpoint"].tolist()
    ['last']
    """
    from marginlab.assemble import resolve_device

    run = run if isinstance(run, Run) else load_run(run)
    attack = _check_norm_attack(norm, attack)
    eps_tuple = _check_eps(eps, norm)
    if n < 1:
        raise ValueError(f"n: must be a positive number of samples, got {n!r}")
    if not checkpoints:
        raise ValueError("checkpoints: give at least one, e.g. ['1e-10', 'last']")
    torch_device = str(resolve_device(device))
    specs = [_parse_checkpoint(spec) for spec in checkpoints]
    chosen = [run.checkpoint(spec) for spec in specs]

    x_all, y_all = run.load_data(split, device=torch_device)
    indices = np.sort(
        np.random.default_rng(seed).choice(len(x_all), size=min(n, len(x_all)), replace=False)
    )
    index = torch.as_tensor(indices, device=x_all.device)
    x, y = x_all[index], y_all[index]
    x_train, y_train = run.load_data("train", device=torch_device)
    loss = get_loss(validate(run.config).loss)

    by_epoch: dict[int, tuple[AttackResult, np.ndarray, float | None]] = {}
    rows, samples, results = [], {}, {}
    for label, spec, checkpoint in zip(map(str, checkpoints), specs, chosen, strict=True):
        if checkpoint.epoch not in by_epoch:
            model = run.load_model(spec, device=torch_device)
            result = run_attack(
                model,
                x,
                y,
                attack=attack,
                norm=norm,
                eps=eps_tuple,
                options=options,
                batch_size=batch_size,
                seed=seed,
                progress=progress,
                description=f"{attack} {norm} {label} (epoch {checkpoint.epoch})",
            )
            try:
                lower = certified_radius(model, x, y, norm=norm)
            except ValueError:
                lower = np.full(len(x), np.nan)
            margin = margin_metrics(evaluate(model, x_train, y_train, loss), model, loss)
            by_epoch[checkpoint.epoch] = (result, lower, margin["normalized_margin"])
        result, lower, normalized = by_epoch[checkpoint.epoch]
        results[f"{label} (epoch {checkpoint.epoch})"] = result
        row = {
            "checkpoint": label,
            "epoch": checkpoint.epoch,
            "log10_loss": checkpoint.log10_loss_mean,
            "normalized_margin": normalized,
            "accuracy": float(1 - result.misclassified.mean()),
        }
        row.update(
            zip(
                map(eps_column, eps_tuple),
                map(float, result.robust_accuracy(eps_tuple)),
                strict=True,
            )
        )
        row["median_distance"] = result.median_distance
        row["median_lower_bound"] = float(np.median(lower))
        rows.append(row)
        samples[label] = {"distance": result.distances.tolist(), "lower_bound": lower.tolist()}
        if result.found_by is not None:
            samples[label]["found_by"] = list(result.found_by)
    table = pd.DataFrame(rows)

    if write:
        paths = result_paths(run.path, norm, attack, split)
        run.store.write_json(
            paths["json"].name,
            {
                "norm": norm,
                "attack": attack,
                "options": _attack_settings(attack, options),
                "split": split,
                "n": len(indices),
                "seed": seed,
                "eps": list(eps_tuple),
                "rows": table.to_dict(orient="records"),
                "indices": indices.tolist(),
                "samples": samples,
                "paired": paired_changes(
                    [(row["checkpoint"], samples[row["checkpoint"]]["distance"]) for row in rows],
                    eps_tuple,
                ).to_dict(orient="records"),
            },
        )
        table.to_csv(no_link(paths["csv"]), index=False)
        plot_robust_accuracy(
            results,
            paths["png"],
            eps=eps_tuple,
            title=f"{run.config.get('name', run.path.name)}: {attack} {norm}, {split} "
            f"({len(indices)} samples)",
        )
    return table


# --- the figure -------------------------------------------------------------------------------

_LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)))


def plot_robust_accuracy(
    results: Mapping[str, AttackResult],
    path: str | os.PathLike,
    *,
    eps: Sequence[float],
    title: str = "",
) -> Path:
    """Robust accuracy against epsilon, one curve per checkpoint (Lyu & Li Fig 8).

    Minimal-norm attacks give the whole curve; a fixed-epsilon attack its points. Curves
    differ in line style and grey level, so the figure reads in greyscale.

    Parameters
    ----------
    results : mapping
        Curve label -> :class:`AttackResult`.
    path : path
        PNG to write.
    eps : sequence of float
        Epsilons of interest: the axis reaches at least the largest.
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    finite = np.concatenate(
        [r.distances[np.isfinite(r.distances)] for r in results.values()] + [np.zeros(1)]
    )
    top = max(max(eps), float(np.quantile(finite, 0.99)))
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    greys = np.linspace(0.0, 0.6, max(len(results), 1))
    for i, (label, result) in enumerate(results.items()):
        style = {"linestyle": _LINE_STYLES[i % len(_LINE_STYLES)], "color": str(greys[i])}
        if result.eps_attacked is None:
            grid = np.linspace(0.0, top, 400)
            ax.plot(grid, result.robust_accuracy(grid), label=label, **style)
        else:
            grid = np.array([0.0, *result.eps_attacked])
            ax.plot(grid, result.robust_accuracy(grid), marker="o", label=label, **style)
    norm = next(iter(results.values())).norm if results else "l2"
    ax.set_xlabel(f"epsilon ({'L2' if norm == 'l2' else 'L-inf'})")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.savefig(no_link(path), dpi=120)
    plt.close(fig)
    return Path(path)
