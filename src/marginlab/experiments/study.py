"""What one paper's reproduction works with: its scale, its output folder, its runs, its
figures and the claims it checks.

A paper module (:mod:`marginlab.experiments.papers`) receives a :class:`Study` and fills it;
:func:`marginlab.experiments.reproduce.reproduce` writes the result.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from matplotlib.figure import Figure

from marginlab.config import validate
from marginlab.experiments.claims import Claim, check, not_run
from marginlab.runs.run import Run, load_run

SCALES = ("ci", "cpu", "full")
T = TypeVar("T")


@dataclass(frozen=True)
class FigureFile:
    """A figure written by a reproduction, with the caption the report shows under it."""

    paper: str
    path: Path
    caption: str


@dataclass
class Study:
    """The working context of one paper's reproduction at one scale.

    Parameters
    ----------
    paper : str
        The paper's key.
    scale : str
        ``ci`` (minutes on 2 CPU cores), ``cpu`` (about an hour) or ``full`` (the paper's own).
    out : path
        This paper's folder: runs go to ``out/runs/NAME``, figures to ``out/figures``.
    data_dir : path, optional
        Where MNIST / CIFAR-10 live (default ``$MARGINLAB_DATA``).
    verbose : bool
        Print one line per step to stderr.

    Examples
    --------
    >>> import tempfile
    >>> study = Study("soudry", "ci", tempfile.mkdtemp())
    >>> study.at_scale(ci=100, cpu=10_000, full=100_000)
    100
    >>> study.check("loss-rate", "the loss falls as 1/t", ours=-1.0, passed=True,
    ...             tolerance="slope in [-1.1, -0.9]").verdict
    'PASS'
    """

    paper: str
    scale: str
    out: Path
    data_dir: str | None = None
    verbose: bool = False
    claims: list[Claim] = field(default_factory=list)
    figures: list[FigureFile] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"--scale: expected one of {', '.join(SCALES)}, got {self.scale!r}")
        self.out = Path(self.out)

    def at_scale(self, *, ci: T, cpu: T, full: T) -> T:
        """The value for this study's scale."""
        return {"ci": ci, "cpu": cpu, "full": full}[self.scale]

    def log(self, message: str) -> None:
        if self.verbose:
            elapsed = time.perf_counter() - self.started
            print(f"[{self.paper} {elapsed:6.0f}s] {message}", file=sys.stderr, flush=True)

    # claims -----------------------------------------------------------------------------

    def check(self, key: str, statement: str, **measured: Any) -> Claim:
        """Record a measured claim (see :func:`marginlab.experiments.claims.check`)."""
        claim = check(self.paper, key, statement, **measured)
        self.claims.append(claim)
        self.log(f"{claim.verdict:7} {key}: {claim.ours}")
        return claim

    def not_run(self, key: str, statement: str, reason: str, **extra: Any) -> Claim:
        """Record a claim that this scale or machine does not measure, and why."""
        claim = not_run(self.paper, key, statement, reason, **extra)
        self.claims.append(claim)
        self.log(f"NOT RUN {key}: {reason}")
        return claim

    # runs and figures -------------------------------------------------------------------

    def train(self, name: str, config: dict) -> Run:
        """Train ``config`` into ``out/runs/NAME`` and open it.

        A finished run with the same configuration is reused, and an interrupted one is
        resumed, so running a reproduction again only does what is left.
        """
        from marginlab.training.engine import resume, train

        resolved = validate({**config, "name": name})
        path = self.out / "runs" / name
        if (path / "config.yaml").exists():
            run = load_run(path)
            if run.config != resolved.to_dict():
                raise FileExistsError(
                    f"{path} holds a run with another configuration; remove it or choose "
                    "another --out"
                )
            if run.status.get("state") not in ("finished", "stopped"):
                self.log(f"resuming {name}")
                resume(path, data_dir=self.data_dir, progress=False)
            return load_run(path)
        self.log(f"training {name}")
        return load_run(train(resolved, path, data_dir=self.data_dir, progress=False))

    def save_figure(self, name: str, fig: Figure, caption: str) -> Path:
        """Write ``fig`` as ``out/figures/NAME.png`` and list it in the report."""
        import matplotlib.pyplot as plt

        from marginlab.plots import save

        path = save(fig, self.out / "figures" / f"{name}.png")
        plt.close(fig)
        return self.add_figure(path, caption)

    def add_figure(self, path: Path, caption: str) -> Path:
        """List a PNG written elsewhere (e.g. by an attack) in the report."""
        self.figures.append(FigureFile(self.paper, Path(path), caption))
        return Path(path)

    def data_missing(self, name: str) -> str | None:
        """None when data set ``name`` loads, else the reason (for a NOT RUN row)."""
        from marginlab.data import load_dataset

        try:
            load_dataset(name, data_dir=self.data_dir, n_train=1)
        except FileNotFoundError as error:
            return str(error)
        return None
