"""Attack samples and return verified per-sample distances (an upper bound on the radius).

For a sample ``(x, y)`` in the box ``X = [0, 1]^d`` the robust radius is
``R(x) = inf {||x' - x|| : x' in X misclassified}`` (0 for a misclassified ``x``), and the
robust accuracy at ``eps`` is the fraction of samples with ``R > eps`` (Lyu & Li 2020, App
J.2; ``lyu-li.md`` A15, C.5, C.6). A verified adversarial example ``x'`` gives
``R <= ||x' - x||``. The minimal-norm attacks give one distance per sample, hence the
robust accuracy at every ``eps`` from one run; a fixed-epsilon attack (PGD) runs at a list
of ``eps`` and records the smallest distance it reached. The certified bound from below is
:func:`marginlab.measure.lipschitz.certified_radius`.

Attacks run in the model's dtype (foolbox works in float64 as well as float32), on its
device unless told otherwise. Samples are misclassified when their margin is ``<= 0``, the
convention of :func:`marginlab.measure.margins.evaluate`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from marginlab.measure.attacks.base import (
    NORMS,
    AttackResult,
    AttackSetup,
    TwoLogits,
    distances,
    is_adversarial,
    verify,
)
from marginlab.measure.attacks.registry import ATTACKS, BEST, DEFAULT_ATTACKS, attacks_of
from marginlab.progress import Bar

DEFAULT_EPS: Mapping[str, tuple[float, ...]] = {
    "l2": (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0),
    "linf": (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
}
"""Epsilons of the robust-accuracy columns (and of fixed-epsilon attacks) when none are
given."""


def check_attack(norm: str, attack: str | None) -> str:
    """Validate ``norm`` and ``attack``; return the attack (the norm's default for None).

    Examples
    --------
    >>> check_attack("l2", None)
    'cw'
    """
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    if attack is None:
        return DEFAULT_ATTACKS[norm]
    choices = (*attacks_of(norm), BEST)
    if attack not in choices:
        raise ValueError(
            f"attack: {attack!r} does not attack the {norm} norm; for {norm} choose one of "
            f"{choices}"
        )
    return attack


def attack_settings(attack: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options of ``attack`` with defaults filled in; ``best`` takes ``attack.option``
    keys. An unknown option is refused with the attack's options and defaults.

    Examples
    --------
    >>> attack_settings("deepfool", {"steps": 5})
    {'steps': 5, 'candidates': 10, 'overshoot': 0.02}
    """
    if attack == BEST:  # options of the attacks it runs, as ``attack.option``
        settings = {}
        for key, value in (options or {}).items():
            name, _, option = key.partition(".")
            if name not in ATTACKS or not option:
                raise ValueError(
                    f"options: {key!r}; the options of best name their attack, such as "
                    f"cw.steps=1000 (attacks: {', '.join(ATTACKS)})"
                )
            settings[key] = attack_settings(name, {option: value})[option]
        return settings
    defaults = ATTACKS[attack].options
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise ValueError(
            f"options: {unknown[0]!r} is not an option of {attack}; its options and defaults: "
            + (", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none")
        )
    return {**defaults, **(options or {})}


def check_eps(eps: Sequence[float] | None, norm: str) -> tuple[float, ...]:
    """Sorted distinct epsilons (the norm's defaults for None); refuses negative ones."""
    values = tuple(float(e) for e in (DEFAULT_EPS[norm] if eps is None else eps))
    if not values or any(not math.isfinite(e) or e < 0 for e in values):
        raise ValueError(f"eps: expected finite non-negative epsilons, got {eps!r}")
    return tuple(sorted(set(values)))


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
    expected_seconds: float | None = None,
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
        A registered attack of the norm (:func:`~marginlab.measure.attacks.attacks_of`);
        default C&W for ``l2``, PGD for ``linf``; ``best`` runs them all and keeps the
        closest example per sample (:func:`closest`).
    norm : {"l2", "linf"}
    eps : sequence of float, optional
        Fixed-epsilon attacks (PGD) only: the epsilons to try (default
        :data:`DEFAULT_EPS` ``[norm]``).
    options : mapping, optional
        Overrides of the attack's options (``ATTACKS[attack].options``); for ``best``,
        keyed by attack and option, such as ``{"cw.steps": 1000}``.
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
    expected_seconds : float, optional
        The attack's estimated cost: the bar counts it down until finished batches give a
        pace of their own.

    Returns
    -------
    AttackResult

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Linear(4, 2, bias=False).double()
    >>> model.weight.data = torch.eye(2, 4, dtype=torch.float64)
    >>> x = torch.rand(8, 4, generator=g, dtype=torch.float64)
    >>> y = model(x).argmax(1)
    >>> result = run_attack(model, x, y, attack="deepfool", progress=False)
    >>> bool(result.success.all()), bool((result.distances > 0).all())
    (True, True)
    """
    attack = check_attack(norm, attack)
    settings = attack_settings(attack, options)
    eps_tuple = check_eps(eps, norm)
    if attack == BEST:
        results = []
        for name in attacks_of(norm):
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
    found = torch.zeros(len(x), dtype=torch.float64, device=device)
    bar = Bar(description or f"{attack} {norm}", total=len(x), enabled=progress)
    with _seeded_eval(model, seed, device), bar:
        misclassified = torch.zeros(len(x), dtype=torch.bool, device=device)
        for i, part in _chunks(x, batch_size):
            misclassified[i : i + len(part)] = is_adversarial(model, part, y[i : i + len(part)])
        # the estimate counts down until finished batches give a pace (one batch gives none)
        bar.update(int(misclassified.sum()), "samples", remaining=expected_seconds)
        with torch.no_grad():
            binary = model(x[:1]).shape[1] == 1
        classifier = TwoLogits(model).eval() if binary else model
        setup = AttackSetup(classifier, norm, eps_tuple, bounds, settings, device)
        run = ATTACKS[attack].build(setup)
        todo = (~misclassified).nonzero().squeeze(1)
        for start_index in range(0, len(todo), batch_size):
            index = todo[start_index : start_index + batch_size]
            candidates = run(x[index], y[index]).detach()
            ok = verify(model, candidates, y[index], bounds)
            adversarials[index[ok]] = candidates[ok]
            found[index] = torch.where(
                ok, distances(x[index], candidates, norm), torch.tensor(math.inf, device=device)
            )
            bar.advance(len(index))
    return AttackResult(
        norm=norm,
        attack=attack,
        distances=found.cpu().numpy(),
        adversarials=adversarials.cpu(),
        misclassified=misclassified.cpu().numpy(),
        eps_attacked=eps_tuple if ATTACKS[attack].fixed_eps else None,
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
