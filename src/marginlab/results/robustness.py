"""Robustness along a run's checkpoints: :func:`attack_along_training` and its record.

Lyu & Li (2020, App J.2; Fig 8, Table 1) observe that training longer makes a network more
robust. :func:`attack_along_training` attacks the same samples at several checkpoints and
returns a :class:`RobustnessReport`: per checkpoint and sample the attack distance (an upper
bound on the robust radius, :mod:`marginlab.measure.attacks`) and the certified lower bound
(:mod:`marginlab.measure.lipschitz`); per epsilon the robust accuracy; from each checkpoint to
the next the paired sign tests. ``marginlab attack`` writes it as
``robustness-<norm>-<attack>-<split>.json`` (and the table as ``.csv``); the plots and the
HTML report read it through :meth:`RobustnessReport.load` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from marginlab.results.record import Record, finite_or_none, or_nan
from marginlab.runs.run import Run, load_run
from marginlab.runs.store import no_link

if TYPE_CHECKING:
    from marginlab.measure.attacks import AttackResult

DEFAULT_CHECKPOINTS = ("1e-10", "1e-20", "last")
CURVE_POINTS = 400
"""Epsilons per curve of a minimal-norm attack (its robust accuracy is known at every one)."""


def eps_column(eps: float) -> str:
    """Name of the table column of the robust accuracy at ``eps`` (``robust_acc@0.5``)."""
    return f"robust_acc@{eps:g}"


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


@dataclass(frozen=True, eq=False)
class CheckpointAttack:
    """The attack on the report's samples at one checkpoint.

    Attributes
    ----------
    checkpoint : str
        The checkpoint spec as asked (``"1e-20"``, ``"last"``, an epoch).
    epoch : int
    log10_loss : float or None
        log10 of the mean training loss at the checkpoint.
    normalized_margin : float or None
        ``q_min / rho^L`` on the whole training set (None without a homogeneity order).
    distances : numpy.ndarray
        ``(N,)`` distance to the verified adversarial example per sample: 0 for a sample
        misclassified to begin with, ``inf`` where the attack found none.
    lower_bounds : numpy.ndarray
        ``(N,)`` certified lower bound on the radius (nan where the network has no bound).
    found_by : tuple of str or None
        ``best`` only: per sample, the attack whose example was kept.
    seconds : float
        Wall time of the attack (nan when not recorded).
    """

    checkpoint: str
    epoch: int
    log10_loss: float | None
    normalized_margin: float | None
    distances: np.ndarray
    lower_bounds: np.ndarray
    found_by: tuple[str, ...] | None = None
    seconds: float = float("nan")

    @property
    def label(self) -> str:
        """``"1e-20 (epoch 800)"``, or ``"epoch 800"`` when the spec was the epoch."""
        if self.checkpoint == str(self.epoch):
            return f"epoch {self.epoch}"
        return f"{self.checkpoint} (epoch {self.epoch})"

    @property
    def accuracy(self) -> float:
        """Fraction of the samples classified correctly before any attack."""
        return float((self.distances > 0).mean()) if len(self.distances) else float("nan")


@dataclass(frozen=True, eq=False)
class RobustnessReport(Record):
    """Attacks on the same samples at several checkpoints of a run.

    Attributes
    ----------
    norm, attack, split : str
    options : dict
        The attack's options, defaults filled in.
    seed : int
        Seed of the sample draw and of the attacks' random starts.
    eps : tuple of float
        Epsilons of the robust-accuracy columns.
    fixed_eps : bool
        The attack ran at ``eps`` only (PGD): robust accuracy is known up to ``max(eps)``.
    indices : numpy.ndarray
        The attacked samples' indices in the split.
    checkpoints : tuple of CheckpointAttack
        In the order asked.
    """

    norm: str
    attack: str
    split: str
    options: dict[str, Any]
    seed: int
    eps: tuple[float, ...]
    fixed_eps: bool
    indices: np.ndarray
    checkpoints: tuple[CheckpointAttack, ...] = field(default=())

    FORMAT = "marginlab.robustness"
    VERSION = 2
    REGENERATE = "marginlab attack RUN_DIR"
    PATTERN = "robustness-*.json"

    @property
    def file_name(self) -> str:
        return f"robustness-{self.norm}-{self.attack}-{self.split}.json"

    @property
    def setting(self) -> str:
        """``"l2 cw train"``: what was attacked and how."""
        return f"{self.norm} {self.attack} {self.split}"

    @classmethod
    def find(cls, run: Run) -> list[RobustnessReport]:
        """Every robustness report of the run, by file name."""
        return [cls.load(path) for path in sorted(run.path.glob(cls.PATTERN))]

    def save(self, run: Run) -> Path:
        """Write the JSON and, beside it, :meth:`table` as CSV; returns the JSON file."""
        path = super().save(run)
        self.table().to_csv(no_link(path.with_suffix(".csv")), index=False)
        return path

    def robust_accuracy(self, which: int, eps: float | Sequence[float]) -> np.ndarray:
        """Robust accuracy of checkpoint ``which`` at each ``eps`` (an upper bound: the
        attack may miss closer examples)."""
        eps_array = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        if self.fixed_eps and eps_array.max() > max(self.eps) * (1 + 1e-12):
            raise ValueError(
                f"eps: {self.attack} ran at eps <= {max(self.eps):g} only; ask for robust "
                f"accuracy up to that, or attack at larger eps"
            )
        distances = self.checkpoints[which].distances
        return (distances[None, :] > eps_array[:, None]).mean(axis=1)

    def table(self) -> pd.DataFrame:
        """One row per checkpoint: ``checkpoint``, ``epoch``, ``log10_loss``,
        ``normalized_margin``, ``accuracy``, ``robust_acc@<eps>`` per epsilon,
        ``median_distance`` and ``median_lower_bound`` (nan where there is no bound)."""
        rows = []
        for i, c in enumerate(self.checkpoints):
            row = {
                "checkpoint": c.checkpoint,
                "epoch": c.epoch,
                "log10_loss": c.log10_loss,
                "normalized_margin": c.normalized_margin,
                "accuracy": c.accuracy,
            }
            accuracy = self.robust_accuracy(i, self.eps)
            row.update(zip(map(eps_column, self.eps), map(float, accuracy), strict=True))
            row["median_distance"] = float(np.median(c.distances))
            row["median_lower_bound"] = float(np.median(c.lower_bounds))
            rows.append(row)
        return pd.DataFrame(rows)

    def curves(self) -> pd.DataFrame:
        """Robust accuracy against epsilon in long form: ``checkpoint`` (its label),
        ``epoch``, ``eps``, ``robust_accuracy``. A minimal-norm attack's curve is sampled
        from 0 to past the largest epsilon and the 99th percentile of the distances; a
        fixed-epsilon attack's curve has its epsilons only."""
        if self.fixed_eps:
            grid = np.array([0.0, *self.eps])
        else:
            finite = [c.distances[np.isfinite(c.distances)] for c in self.checkpoints]
            spread = np.concatenate([*finite, np.zeros(1)])
            top = max(max(self.eps), float(np.quantile(spread, 0.99)))
            grid = np.linspace(0.0, top, CURVE_POINTS)
        frames = [
            pd.DataFrame(
                {
                    "checkpoint": c.label,
                    "epoch": c.epoch,
                    "eps": grid,
                    "robust_accuracy": self.robust_accuracy(i, grid),
                }
            )
            for i, c in enumerate(self.checkpoints)
        ]
        columns = ["checkpoint", "epoch", "eps", "robust_accuracy"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def paired(self) -> pd.DataFrame:
        """:func:`paired_changes` from each checkpoint to the next, at the report's eps."""
        return paired_changes([(c.checkpoint, c.distances) for c in self.checkpoints], self.eps)

    def _payload(self) -> dict[str, Any]:
        return {
            "norm": self.norm,
            "attack": self.attack,
            "split": self.split,
            "options": self.options,
            "seed": self.seed,
            "eps": list(self.eps),
            "fixed_eps": self.fixed_eps,
            "indices": [int(i) for i in self.indices],
            "checkpoints": [
                {
                    "checkpoint": c.checkpoint,
                    "epoch": c.epoch,
                    "log10_loss_mean": finite_or_none(c.log10_loss),
                    "normalized_margin": finite_or_none(c.normalized_margin),
                    "seconds": finite_or_none(c.seconds),
                    # null: no adversarial example found (distance) or no bound
                    "distances": [finite_or_none(d) for d in c.distances.tolist()],
                    "lower_bounds": [finite_or_none(b) for b in c.lower_bounds.tolist()],
                    "found_by": None if c.found_by is None else list(c.found_by),
                }
                for c in self.checkpoints
            ],
            # Derived from the distances, kept for readers of the file alone.
            "paired": self.paired().to_dict(orient="records"),
        }

    @classmethod
    def _from_payload(cls, payload: dict[str, Any], version: int) -> RobustnessReport:
        def distances(values: list) -> np.ndarray:
            return np.array([np.inf if v is None else v for v in values], dtype=np.float64)

        def bounds(values: list) -> np.ndarray:
            return np.array([or_nan(v) for v in values], dtype=np.float64)

        if version == 1:  # `marginlab attack` before records: a table and samples by label
            samples = payload["samples"]
            checkpoints = [
                CheckpointAttack(
                    row["checkpoint"],
                    row["epoch"],
                    row.get("log10_loss"),
                    row.get("normalized_margin"),
                    distances(samples[row["checkpoint"]]["distance"]),
                    bounds(samples[row["checkpoint"]]["lower_bound"]),
                    _found_by(samples[row["checkpoint"]].get("found_by")),
                )
                for row in payload["rows"]
            ]
            fixed = payload["attack"] == "pgd"
        else:
            checkpoints = [
                CheckpointAttack(
                    c["checkpoint"],
                    c["epoch"],
                    c["log10_loss_mean"],
                    c["normalized_margin"],
                    distances(c["distances"]),
                    bounds(c["lower_bounds"]),
                    _found_by(c["found_by"]),
                    or_nan(c["seconds"]),
                )
                for c in payload["checkpoints"]
            ]
            fixed = bool(payload["fixed_eps"])
        return cls(
            norm=payload["norm"],
            attack=payload["attack"],
            split=payload["split"],
            options=dict(payload["options"]),
            seed=int(payload["seed"]),
            eps=tuple(float(e) for e in payload["eps"]),
            fixed_eps=fixed,
            indices=np.asarray(payload["indices"], dtype=np.int64),
            checkpoints=tuple(checkpoints),
        )


def _found_by(values: list | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


# Samples attacked to time an attack before the whole job starts: twice, so that the fixed
# cost of a batch (C&W's thousands of steps run whatever its size) and the cost of a sample
# are told apart and the job's batches can be extrapolated.
PROBE_SAMPLES = (1, 4)


def _announce_cost(
    run, chosen, x, y, attack, norm, eps, options, seed, device, batch_size
) -> float:
    """Time the attack on a few samples of the first checkpoint; print what the whole job
    will cost (a warning past an hour) and return the seconds of one checkpoint."""
    from marginlab.measure.attacks import ATTACKS, attack_settings, run_attack
    from marginlab.progress import announce_cost

    model = run.load_model(chosen[0], device=device)
    sizes = [k for k in PROBE_SAMPLES if k <= len(x)]
    # The probe runs a hundredth of each step count (C&W: 9 x 10000 steps) and scales back:
    # the cost of every step run, an upper bound where the attack stops early.
    probe_options, scale, stops_early = dict(options or {}), 1.0, ""
    if attack != "best":
        settings = attack_settings(attack, options)
        for key, value in settings.items():
            if key.endswith("steps") and isinstance(value, int) and value >= 100:
                probe_options[key] = value // 100
                scale *= value / (value // 100)
        if scale > 1:
            stops_early = ATTACKS[attack].stops_early(settings)
    seconds = [
        scale
        * run_attack(
            model,
            x[:k],
            y[:k],
            attack=attack,
            norm=norm,
            eps=eps,
            options=probe_options,
            seed=seed,
            progress=False,
        ).seconds
        for k in sizes
    ]
    # cost(k) = fixed + per_sample * k, from the two probes
    per_sample = max((seconds[-1] - seconds[0]) / max(sizes[-1] - sizes[0], 1), 0.0)
    fixed = max(seconds[0] - per_sample * sizes[0], 0.0)
    full, rest = divmod(len(x), batch_size)
    batches = [batch_size] * full + ([rest] if rest else [])
    checkpoints = len({checkpoint.epoch for checkpoint in chosen})
    total = checkpoints * sum(fixed + per_sample * b for b in batches)
    bound = f"an upper bound, as if every step ran: {stops_early}; " if stops_early else ""
    announce_cost(
        "the attack",
        total,
        f"{bound}{fixed:.2g} s per batch and {per_sample:.2g} s per sample, timed on {sizes} "
        f"samples; {len(x)} samples in batches of {batch_size} at {checkpoints} checkpoints",
        "--n N or fewer --checkpoints",
        upper_bound=bool(stops_early),
    )
    return total / checkpoints


def attack_along_training(
    run: Run | str | os.PathLike,
    checkpoints: Sequence[str | int | float] = DEFAULT_CHECKPOINTS,
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
) -> RobustnessReport:
    """Attack the same samples at several checkpoints of a run (Lyu & Li Table 1, Fig 8).

    Parameters
    ----------
    run : Run or path
        The run.
    checkpoints : sequence
        Checkpoint specs, in the order of the report: ``"last"``, an epoch, or a loss level
        such as ``"1e-20"`` (the first kept checkpoint below it; see :meth:`Run.checkpoint`).
    split : {"train", "test"}
    n : int
        Samples, drawn once without replacement with ``seed`` (all if the split is smaller).
    seed : int
        Seeds the sample draw and the attacks' random starts.
    norm, attack, eps, options, batch_size
        As for :func:`marginlab.measure.attacks.run_attack`; ``eps`` also sets the
        robust-accuracy columns.
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    progress : bool
        Print the estimated cost first (the attack timed on 1 and 4 samples), then a
        progress bar per checkpoint.

    Returns
    -------
    RobustnessReport
        Save it into the run with :meth:`RobustnessReport.save`.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> config = {"data": {"name": "digits", "classes": [0, 1]},
    ...           "model": {"kind": "mlp", "hidden": [8]},
    ...           "train": {"max_epochs": 30, "target_log10_loss": None}}
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> report = attack_along_training(path, ["last"], n=20, attack="deepfool", progress=False)
    >>> report.table()["checkpoint"].tolist()
    ['last']
    """
    # Here, not at the top: reading and drawing reports needs no attack library (foolbox).
    import torch

    from marginlab.build import resolve_device
    from marginlab.config import validate
    from marginlab.losses import get_loss
    from marginlab.measure.attacks import attack_settings, check_attack, check_eps, run_attack
    from marginlab.measure.lipschitz import certified_radius
    from marginlab.measure.margins import evaluate, margin_metrics

    run = run if isinstance(run, Run) else load_run(run)
    attack = check_attack(norm, attack)
    settings = attack_settings(attack, options)
    eps_tuple = check_eps(eps, norm)
    if n < 1:
        raise ValueError(f"n: must be a positive number of samples, got {n!r}")
    if not checkpoints:
        raise ValueError("checkpoints: give at least one, e.g. ['1e-10', 'last']")
    torch_device = str(resolve_device(device))
    chosen = [run.checkpoint(spec) for spec in checkpoints]

    x_all, y_all = run.load_data(split, device=torch_device)
    indices = np.sort(
        np.random.default_rng(seed).choice(len(x_all), size=min(n, len(x_all)), replace=False)
    )
    index = torch.as_tensor(indices, device=x_all.device)
    x, y = x_all[index], y_all[index]
    x_train, y_train = run.load_data("train", device=torch_device)
    loss = get_loss(validate(run.config).loss)

    per_checkpoint = None  # the estimated seconds of one checkpoint, for its bar
    if progress:
        per_checkpoint = _announce_cost(
            run, chosen, x, y, attack, norm, eps_tuple, options, seed, torch_device, batch_size
        )
    by_epoch: dict[int, tuple[AttackResult, np.ndarray, float | None]] = {}
    attacked = []
    for spec, checkpoint in zip(map(str, checkpoints), chosen, strict=True):
        if checkpoint.epoch not in by_epoch:
            model = run.load_model(checkpoint, device=torch_device)
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
                description=f"{attack} {norm} {spec} (epoch {checkpoint.epoch})",
                expected_seconds=per_checkpoint,
            )
            try:
                lower = certified_radius(model, x, y, norm=norm)
            except ValueError:
                lower = np.full(len(x), np.nan)
            margin = margin_metrics(evaluate(model, x_train, y_train, loss), model, loss)
            by_epoch[checkpoint.epoch] = (result, lower, margin["normalized_margin"])
        result, lower, normalized = by_epoch[checkpoint.epoch]
        attacked.append(
            CheckpointAttack(
                spec,
                checkpoint.epoch,
                checkpoint.log10_loss_mean,
                normalized,
                result.distances,
                lower,
                result.found_by,
                result.seconds,
            )
        )
    return RobustnessReport(
        norm=norm,
        attack=attack,
        split=split,
        options=settings,
        seed=seed,
        eps=eps_tuple,
        # a fixed-epsilon attack (or best of such attacks only) knows nothing past max(eps)
        fixed_eps=next(iter(by_epoch.values()))[0].eps_attacked is not None,
        indices=indices,
        checkpoints=tuple(attacked),
    )
