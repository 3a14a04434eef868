"""Everything a run directory holds, read through its records: for figures and reports.

:func:`open_runs` opens run directories (a sweep directory stands for its runs) under legend
labels; :func:`collect` reads a run's metrics and every result record it has.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from marginlab.results.kkt import KKTTable
from marginlab.results.reference import ReferenceComparison
from marginlab.results.robustness import RobustnessReport
from marginlab.runs.run import Run

SHORT_LABEL_AFTER = 4
"""More runs than this, or a name longer than :data:`LONG_NAME`, and figures label runs
``r1``, ``r2``, ... with a key table beside them."""
LONG_NAME = 24


@dataclass(frozen=True)
class Plane:
    """A model on 2-d inputs and its training points, for the decision-boundary panel."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    epoch: int


@dataclass
class RunResults:
    """A run's metrics and result records.

    Attributes
    ----------
    run : Run
    name : str
        The run's name (its configuration's), or its directory when names repeat.
    label : str
        The run's label in figures: its name, or ``r1``, ``r2``, ... among many runs.
    metrics : pandas.DataFrame
    kkt : KKTTable or None
        ``kkt.json`` (``marginlab kkt``).
    robustness : list of RobustnessReport
        ``robustness-*.json`` (``marginlab attack``).
    references : list of ReferenceComparison
        ``reference-*.json`` (``marginlab reference``).
    """

    run: Run
    name: str
    label: str
    metrics: pd.DataFrame
    kkt: KKTTable | None = None
    robustness: list[RobustnessReport] = field(default_factory=list)
    references: list[ReferenceComparison] = field(default_factory=list)

    @cached_property
    def plane(self) -> Plane | None:
        """The last model and the training points when the inputs are 2-d vectors, else
        None (the configuration does not say it: an MLP flattens images, so the data is
        loaded)."""
        x, y = self.run.load_data("train")
        if x.ndim != 2 or x.shape[1] != 2:
            return None
        return Plane(self.run.load_model("last"), x, y, self.run.checkpoint("last").epoch)


def run_dirs(path: str | os.PathLike) -> list[Path]:
    """``path`` itself, or for a sweep (or ``--replicas``) directory the runs in it, in the
    order of its ``summary.csv``."""
    path = Path(path)
    if (path / "config.yaml").exists() or not path.is_dir():
        return [path]
    inner = sorted(child for child in path.iterdir() if (child / "config.yaml").exists())
    if (path / "summary.csv").exists():
        order = {name: i for i, name in enumerate(pd.read_csv(path / "summary.csv")["trial"])}
        inner.sort(key=lambda child: order.get(child.name, len(order)))
    return inner or [path]


def open_runs(paths: Iterable[str | os.PathLike | Run]) -> dict[str, Run]:
    """Open run directories, keyed by their name, or their directory when names repeat. A
    sweep directory stands for the runs in it.

    Examples
    --------
    >>> open_runs([])
    {}
    """
    runs: list[Run] = []
    for r in paths:
        runs.extend([r] if isinstance(r, Run) else [Run(path) for path in run_dirs(r)])
    names = [str(r.config.get("name") or r.path.name) for r in runs]
    if len(set(names)) < len(names):
        names = [r.path.name for r in runs]
    if len(set(names)) < len(names):
        names = [str(r.path) for r in runs]
    return dict(zip(names, runs, strict=True))


def short_labels(names: list[str]) -> list[str]:
    """The names themselves when few and short, else ``r1``, ``r2``, ...

    Examples
    --------
    >>> short_labels(["a", "b"]), short_labels([f"trial-{i}" for i in range(6)])[:2]
    (['a', 'b'], ['r1', 'r2'])
    """
    if len(names) <= SHORT_LABEL_AFTER and all(len(name) <= LONG_NAME for name in names):
        return list(names)
    return [f"r{i + 1}" for i in range(len(names))]


def collect(run: Run, name: str | None = None, label: str | None = None) -> RunResults:
    """Read a run's metrics and every result record it has."""
    name = name or str(run.config.get("name") or run.path.name)
    return RunResults(
        run=run,
        name=name,
        label=label or name,
        metrics=run.metrics,
        kkt=KKTTable.find(run),
        robustness=RobustnessReport.find(run),
        references=ReferenceComparison.find(run),
    )


def collect_runs(paths: Iterable[str | os.PathLike | Run]) -> dict[str, RunResults]:
    """:func:`collect` of every run of :func:`open_runs`, keyed by name, labelled for
    figures by :func:`short_labels`."""
    runs = open_runs(paths)
    labels = short_labels(list(runs))
    return {
        name: collect(run, name, label)
        for (name, run), label in zip(runs.items(), labels, strict=True)
    }
