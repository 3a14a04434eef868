"""KKT certificates along a run's checkpoints: :func:`kkt_along_training` and its record.

``marginlab kkt RUN --checkpoint all`` prints a :class:`KKTTable` and writes it as
``kkt.json``; the plots and the HTML report read that file through :meth:`KKTTable.load`
and nothing else. The certificates themselves are :func:`marginlab.measure.kkt.kkt_certificates`.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from marginlab.measure.kkt import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_TAUS,
    KKT_OBSERVER_KEYS,
    KKTResult,
    kkt_certificates,
)
from marginlab.progress import Bar, cost_message, format_duration
from marginlab.results.record import Record, finite_or_none, shown
from marginlab.runs.checkpoint_spec import CheckpointSpec
from marginlab.runs.run import Checkpoint, Run, load_run

ALL = "all"
LOSS_WEIGHTS = "loss weights"
LONG_COLUMNS = ["epoch", "log10_loss", "certificate", "tau", "eps_rel", "delta", "n_active"]


@dataclass(frozen=True)
class KKTRow:
    """The certificates of one checkpoint, or why there are none.

    Attributes
    ----------
    epoch : int
    reason : str
        Why the checkpoint was kept (``init``, ``loss<1e-20``, ``last``).
    log10_loss : float or None
        log10 of the mean training loss at the checkpoint.
    result : KKTResult or None
        The certificates; None when they could not be computed.
    error : str or None
        Why not (e.g. the model does not fit the training set yet).
    """

    epoch: int
    reason: str
    log10_loss: float | None
    result: KKTResult | None = None
    error: str | None = None


@dataclass(frozen=True)
class Trend:
    """How a quantity moved across checkpoints: its values in training order."""

    quantity: str
    values: tuple[float, ...]

    @property
    def falls(self) -> int:
        """At how many steps from one checkpoint to the next it fell."""
        return sum(b < a for a, b in zip(self.values, self.values[1:], strict=False))

    def __str__(self) -> str:
        first, last, steps = self.values[0], self.values[-1], len(self.values) - 1
        return f"{first:.3e} -> {last:.3e} (fell at {self.falls} of {steps})"


@dataclass(frozen=True)
class KKTTable(Record):
    """KKT certificates of a run's checkpoints (Lyu & Li 2020), in training order.

    Attributes
    ----------
    taus : tuple of float
        The activity tolerances of the best certificates.
    rows : tuple of KKTRow
        One per checkpoint.

    Examples
    --------
    >>> table = KKTTable(taus=(0.1,), rows=(KKTRow(3, "last", -2.0, error="q_min <= 0"),))
    >>> KKTTable.from_json(table.to_json()) == table
    True
    """

    taus: tuple[float, ...]
    rows: tuple[KKTRow, ...]

    FORMAT = "marginlab.kkt"
    VERSION = 2
    REGENERATE = "marginlab kkt RUN_DIR --checkpoint all"
    FILE = "kkt.json"

    @property
    def file_name(self) -> str:
        return self.FILE

    @classmethod
    def find(cls, run: Run) -> KKTTable | None:
        """The run's ``kkt.json``, or None when ``marginlab kkt`` has not been run."""
        path = run.path / cls.FILE
        return cls.load(path) if path.exists() else None

    def __str__(self) -> str:
        """The table as ``marginlab kkt`` prints it, with the trend when it spans
        checkpoints."""
        lines = [
            f"{'epoch':>8} {'log10 loss':>10} {'q_min/rho^L':>11} {'1-beta':>14} {'tau':>7} "
            f"{'eps_rel':>10} {'delta':>10} {'active':>7}"
        ]
        for row in self.rows:
            lead = f"{row.epoch:>8} {shown(row.log10_loss, '.2f'):>10}"
            if row.result is None:
                lines.append(f"{lead}  skipped: {row.error}")
                continue
            result = row.result
            certs = [("weights", result.loss_weights)]
            certs += [(f"{c.tau:g}", c) for c in result.certificates]
            for label, cert in certs:
                lines.append(
                    f"{lead} {result.normalized_margin:>11.5g} {1.0 - result.beta:>14.3e} "
                    f"{label:>7} {cert.eps_rel:>10.3e} {cert.delta:>10.3e} {cert.n_active:>7}"
                )
                lead = " " * len(lead)
        lines.append("(tau 'weights': the certificate with the loss weights as multipliers)")
        trends = self.trend()
        if trends:
            lines.append(
                f"across {len(trends[0].values)} checkpoints, first -> last "
                "(steps at which it fell):"
            )
            lines += [f"  {trend.quantity:<16} {trend}" for trend in trends]
        lines.append("")
        lines += [textwrap.fill(sentence, 96) for sentence in self.summary()]
        return "\n".join(lines)

    def long_table(self) -> pd.DataFrame:
        """One row per checkpoint and certificate: ``epoch``, ``log10_loss``,
        ``certificate`` (``loss weights`` or ``tau=<tau>``), ``tau``, ``eps_rel``, ``delta``
        and ``n_active``; checkpoints without certificates are left out.

        Examples
        --------
        >>> KKTTable(taus=(0.1,), rows=()).long_table().columns.tolist()
        ['epoch', 'log10_loss', 'certificate', 'tau', 'eps_rel', 'delta', 'n_active']
        """
        records = []
        for row in self.rows:
            if row.result is None:
                continue
            certificates = [(LOSS_WEIGHTS, row.result.loss_weights)]
            certificates += [(f"tau={c.tau:g}", c) for c in row.result.certificates]
            for name, cert in certificates:
                records.append(
                    {
                        "epoch": row.epoch,
                        "log10_loss": row.log10_loss,
                        "certificate": name,
                        "tau": cert.tau,
                        "eps_rel": cert.eps_rel,
                        "delta": cert.delta,
                        "n_active": cert.n_active,
                    }
                )
        return pd.DataFrame(records, columns=LONG_COLUMNS)

    def trend(self, minimum: int = 3) -> list[Trend]:
        """How ``1 - beta`` and each certificate's ``eps_rel`` and ``delta`` moved, over
        the checkpoints with certificates (a repeated epoch counts once); empty below
        ``minimum`` checkpoints."""
        measured = [row for row in self.rows if row.result is not None]
        measured = [r for i, r in enumerate(measured) if i == 0 or r.epoch != measured[i - 1].epoch]
        if len(measured) < minimum:
            return []
        results = [row.result for row in measured]
        trends = [Trend("1-beta", tuple(1.0 - r.beta for r in results))]
        labels = ["weights"] + [f"tau {c.tau:g}" for c in results[0].certificates]
        for i, label in enumerate(labels):
            certs = [r.loss_weights if i == 0 else r.certificates[i - 1] for r in results]
            trends.append(Trend(f"{label} eps_rel", tuple(c.eps_rel for c in certs)))
            trends.append(Trend(f"{label} delta", tuple(c.delta for c in certs)))
        return trends

    def summary(self) -> list[str]:
        """Three sentences in plain words: what eps_rel, delta and 1-beta measure, how they
        moved from the first certified checkpoint to the last, and whether they fell.

        Examples
        --------
        >>> KKTTable(taus=(0.1,), rows=()).summary()[1]
        'Fewer than three checkpoints have certificates, so there is no trend to read; ...'
        """
        what = (
            "eps_rel measures how far the parameters (rescaled to a minimum margin of 1) are "
            "from a nonnegative combination of the margins' gradients, relative to their "
            "norm; delta measures the largest multiplier times its constraint's slack; "
            "1-beta is one minus the cosine between the parameters and the negative loss "
            "gradient; all three are 0 at a KKT point of the max-margin problem."
        )
        trends = {trend.quantity: trend for trend in self.trend()}
        if not trends:
            return [
                what,
                "Fewer than three checkpoints have certificates, so there is no trend to "
                "read; certify more of them (marginlab kkt RUN_DIR --checkpoint all) on a "
                "run trained further below its loss threshold.",
                "No conclusion about convergence to a KKT point can be drawn yet.",
            ]
        # the best certificate: the tolerance whose last eps_rel is smallest
        eps = min(
            (t for name, t in trends.items() if name.endswith("eps_rel")),
            key=lambda t: t.values[-1],
        )
        label = eps.quantity.removesuffix(" eps_rel")
        delta = trends[f"{label} delta"]
        quoted = [trends["1-beta"], eps, delta]
        measured = [row for row in self.rows if row.result is not None]
        moved = (
            f"From epoch {measured[0].epoch} to epoch {measured[-1].epoch}, "
            + "; ".join(
                f"{t.quantity} went from {t.values[0]:.2e} to {t.values[-1]:.2e} (falling at "
                f"{t.falls} of {len(t.values) - 1} steps)"
                for t in quoted
            )
            + "."
        )
        fell = [t.quantity for t in quoted if t.values[-1] < t.values[0]]
        if len(fell) == len(quoted):
            verdict = (
                "All three fell: the checkpoints approach a KKT point of the max-margin "
                "problem, as Lyu & Li prove for gradient descent on homogeneous networks."
            )
        else:
            rose = ", ".join(t.quantity for t in quoted if t.quantity not in fell)
            verdict = (
                f"Not all fell ({rose} did not): these checkpoints do not show convergence to "
                "a KKT point yet; train further, to a lower loss, and certify again."
            )
        return [what, moved, verdict]

    def _payload(self) -> dict[str, Any]:
        return {
            "taus": list(self.taus),
            "rows": [
                {
                    "epoch": row.epoch,
                    "reason": row.reason,
                    "log10_loss_mean": finite_or_none(row.log10_loss),
                    "result": None if row.result is None else row.result.to_dict(),
                    "error": row.error,
                }
                for row in self.rows
            ],
        }

    @classmethod
    def _from_payload(cls, payload: dict[str, Any], version: int) -> KKTTable:
        if version == 1:  # `marginlab kkt` before records: the result's fields in the row
            rows = [
                KKTRow(
                    row["epoch"],
                    row["reason"],
                    row.get("log10_loss_mean"),
                    KKTResult.from_dict(row) if "certificates" in row else None,
                    row.get("error"),
                )
                for row in payload["checkpoints"]
            ]
        else:
            rows = [
                KKTRow(
                    row["epoch"],
                    row["reason"],
                    row["log10_loss_mean"],
                    None if row["result"] is None else KKTResult.from_dict(row["result"]),
                    row["error"],
                )
                for row in payload["rows"]
            ]
        return cls(taus=tuple(float(t) for t in payload["taus"]), rows=tuple(rows))


def observer_table(metrics: pd.DataFrame) -> pd.DataFrame | None:
    """The ``kkt`` observer's columns of a run's metrics in the form of
    :meth:`KKTTable.long_table` (certificates ``observer`` and ``observer, loss weights``);
    None when the observer did not run.

    Examples
    --------
    >>> metrics = pd.DataFrame({"epoch": [5], "log10_loss_mean": [-3.0], "kkt_eps_rel": [0.1],
    ...                         "kkt_delta": [0.2], "kkt_active": [4], "kkt_beta": [0.9],
    ...                         "kkt_weights_eps_rel": [0.5], "kkt_weights_delta": [0.6]})
    >>> observer_table(metrics)[["certificate", "eps_rel"]].values.tolist()
    [['observer', 0.1], ['observer, loss weights', 0.5]]
    """
    eps, delta, active, weights_eps, weights_delta, _ = KKT_OBSERVER_KEYS
    if eps not in metrics:
        return None
    records = []
    for row in metrics.to_dict("records"):
        for name, e, d, n in (
            ("observer", eps, delta, active),
            (f"observer, {LOSS_WEIGHTS}", weights_eps, weights_delta, None),
        ):
            if _is_number(row.get(e)):
                records.append(
                    {
                        "epoch": row["epoch"],
                        "log10_loss": row.get("log10_loss_mean"),
                        "certificate": name,
                        "tau": None,
                        "eps_rel": row[e],
                        "delta": row.get(d),
                        "n_active": row.get(n) if n else None,
                    }
                )
    return pd.DataFrame(records, columns=LONG_COLUMNS) if records else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _chosen(
    run: Run, checkpoints: str | int | float | CheckpointSpec | Sequence[Any]
) -> list[Checkpoint]:
    if isinstance(checkpoints, str) and checkpoints == ALL:
        return run.checkpoints
    if isinstance(checkpoints, (str, int, float, CheckpointSpec)):
        checkpoints = [checkpoints]
    return [run.checkpoint(spec) for spec in checkpoints]


def kkt_along_training(
    run: Run | str | os.PathLike,
    checkpoints: str | int | float | CheckpointSpec | Sequence[Any] = ALL,
    *,
    taus: Sequence[float] = DEFAULT_TAUS,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    chunk_size: int = 4096,
    progress: bool = True,
) -> KKTTable:
    """KKT certificates of a run's checkpoints, on its training set.

    Parameters
    ----------
    run : Run or path
        The run.
    checkpoints : "all", a checkpoint spec, or a sequence of specs
        ``"all"`` (every kept checkpoint, then the last state), or specs as for
        :meth:`Run.checkpoint` (``"last"``, an epoch, a loss level such as ``"1e-400"``).
    taus : sequence of float
        Activity tolerances of the best certificates.
    memory_budget : int
        Bytes for a dense Jacobian; above it the solve is matrix-free.
    chunk_size : int
        Samples per forward pass.
    progress : bool
        Show a bar over the checkpoints with the remaining time, and the estimated cost of
        the whole table once the first checkpoint is certified.

    Returns
    -------
    KKTTable
        A checkpoint where no certificate exists (the model does not fit the training set,
        or declares no homogeneity order) has its reason in ``error``.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> config = {"data": {"name": "gaussians", "params": {"n": 20, "d": 2}},
    ...           "model": {"kind": "linear"},
    ...           "train": {"schedule": "normalized", "max_epochs": 50}}
    >>> path = train(config, tempfile.mkdtemp() + "/r", progress=False)
    >>> table = kkt_along_training(path, "last", taus=[0.1])
    >>> table.long_table()["certificate"].tolist()
    ['loss weights', 'tau=0.1']
    """
    run = run if isinstance(run, Run) else load_run(run)
    chosen = _chosen(run, checkpoints)
    x, y = run.load_data("train")
    # The last checkpoint first: it has the most active constraints, so its time makes an
    # estimate for the whole table that errs high (the first, initial weights, is not even
    # certified and would make it far too low). Rows keep the checkpoints' order.
    order = [len(chosen) - 1, *range(len(chosen) - 1)]
    done: dict[int, KKTRow] = {}
    with Bar("kkt", total=len(chosen), enabled=progress) as bar:
        for index in order:
            checkpoint = chosen[index]
            bar.update(len(done), f"epoch {checkpoint.epoch}")
            done[index] = _certify(run, checkpoint, x, y, taus, memory_budget, chunk_size)
            if len(done) == 1 and len(chosen) > 1 and progress:
                bar.message(
                    cost_message(
                        "kkt",
                        bar.elapsed() * len(chosen),
                        f"the last checkpoint took {format_duration(bar.elapsed())}; "
                        f"{len(chosen)} checkpoints, the earlier ones with fewer active "
                        "constraints",
                        "--checkpoint LEVEL (one checkpoint) or a larger --memory-budget",
                    )
                )
        bar.update(len(done), "done")
    rows = tuple(done[index] for index in range(len(chosen)))
    return KKTTable(taus=tuple(float(t) for t in taus), rows=rows)


def _certify(run, checkpoint, x, y, taus, memory_budget, chunk_size) -> KKTRow:
    """The row of one checkpoint: its certificates, or why there are none."""
    base = (checkpoint.epoch, checkpoint.reason, checkpoint.log10_loss_mean)
    model = run.load_model(checkpoint)  # a run that cannot rebuild its model is an error
    try:
        result = kkt_certificates(
            model,
            x,
            y,
            run.config["loss"],
            taus=list(taus),
            memory_budget=memory_budget,
            chunk_size=chunk_size,
        )
    except ValueError as error:
        return KKTRow(*base, error=str(error))
    return KKTRow(*base, result=result)
