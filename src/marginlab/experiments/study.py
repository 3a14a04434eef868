"""What one paper's reproduction works with: its scale, its output folder, its runs, its
figures and the claims it checks.

A paper module (:mod:`marginlab.experiments.papers`) receives a :class:`Study` and fills it;
:func:`marginlab.experiments.reproduce.reproduce` writes the result.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from matplotlib.figure import Figure

from marginlab.config import validate
from marginlab.experiments.claims import SCALES, Claim, ClaimSpec
from marginlab.runs.run import Run, load_run

T = TypeVar("T")
MEASUREMENTS_FORMAT = 1


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
        This paper's folder: runs go to ``out/runs/NAME``, measurements to
        ``out/measurements/NAME.json``, figures to ``out/figures``.
    data_dir : path, optional
        Where MNIST / CIFAR-10 live (default ``$MARGINLAB_DATA``).
    verbose : bool
        Print one line per step to stderr.
    specs : sequence of ClaimSpec
        The paper's claims (its module's ``CLAIMS``).
    on_progress : callable, optional
        Called with the fraction of the paper's claims that have a row, after each row.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.claims import Judgement
    >>> spec = ClaimSpec("soudry", "loss-rate", "the loss falls as 1/t", "paper",
    ...                  lambda slope: Judgement(f"{slope:.3g}", abs(slope + 1) < 0.1),
    ...                  "slope within 0.1 of -1")
    >>> study = Study("soudry", "ci", tempfile.mkdtemp(), specs=[spec])
    >>> study.at_scale(ci=100, cpu=10_000, full=100_000)
    100
    >>> study.judge("loss-rate", slope=-1.02).verdict
    'PASS'
    """

    paper: str
    scale: str
    out: Path
    data_dir: str | None = None
    verbose: bool = False
    specs: list[ClaimSpec] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    figures: list[FigureFile] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    on_progress: Callable[[float], object] | None = None

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

    def spec(self, key: str) -> ClaimSpec:
        """The declared claim ``key`` of this paper."""
        for spec in self.specs:
            if spec.key == key:
                return spec
        raise KeyError(f"{self.paper}: no claim {key!r} is declared in the paper's CLAIMS")

    def judge(self, key: str, *, note: str = "", **measured: Any) -> Claim:
        """Decide claim ``key`` from the measurements with its criterion, and record the row.

        ``note`` adds context for the reader (it does not enter the verdict). A criterion
        that cannot decide (it raised) gives a FAIL row naming the error.
        """
        spec = self.spec(key)
        try:
            claim = spec.judge(**measured)
        except Exception as error:  # a criterion that cannot read its input must not pass
            claim = spec.failed(f"{type(error).__name__}: {error}", "the criterion raised")
        if note:
            claim = replace(claim, note="; ".join(part for part in (claim.note, note) if part))
        return self._record(claim)

    def not_run(self, key: str, reason: str) -> Claim:
        """Record that this scale or machine does not measure claim ``key``, and why."""
        return self._record(self.spec(key).not_run(reason))

    def finish(self, crash: str | None = None) -> None:
        """Give every declared claim without a row one: NOT RUN where the scale does not
        measure it, FAIL where it should have been measured (``crash``: why it was not)."""
        recorded = {claim.key for claim in self.claims}
        for spec in self.specs:
            if spec.key in recorded:
                continue
            if self.scale in spec.scales:
                note = f"the reproduction stopped: {crash}" if crash else "never measured"
                self._record(spec.failed("not measured", note))
            else:
                scales = " and ".join(spec.scales)
                reason = f"measured at the {scales} scale only"
                self._record(spec.not_run(f"{reason}: {spec.needs}" if spec.needs else reason))

    def _record(self, claim: Claim) -> Claim:
        self.claims.append(claim)
        if self.on_progress is not None and self.specs:
            self.on_progress(min(len(self.claims) / len(self.specs), 1.0))
        detail = claim.ours if claim.ours is not None else claim.note
        self.log(f"{claim.verdict:7} {claim.key}: {detail}")
        return claim

    # measurements -------------------------------------------------------------------------

    def measured(
        self, name: str, settings: Mapping[str, Any], measure: Callable[[], Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Measurements kept in ``out/measurements/NAME.json``, computed once.

        The claims are judged from what this file holds, so running a reproduction again
        judges the saved measurements again (and an altered file is judged as it now
        reads). The file is computed anew when ``settings`` differ from the saved ones.

        Parameters
        ----------
        name : str
            File stem.
        settings : mapping
            Everything the measurements depend on (JSON-serializable).
        measure : callable
            Returns the measurements: numbers, strings, lists and numpy arrays.

        Returns
        -------
        dict
            The measurements, lists of numbers as float numpy arrays.
        """
        path = self.out / "measurements" / f"{name}.json"
        settings = json.loads(json.dumps(settings))
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("settings") == settings:
                return _arrays(saved["values"])
            self.log(f"{name}: settings changed, measuring again")
        values = _plain(dict(measure()))
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": MEASUREMENTS_FORMAT, "settings": settings, "values": values}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")  # NaN and Infinity allowed
        os.replace(tmp, path)
        return _arrays(values)

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


def _plain(value: Any) -> Any:
    """Numpy values as plain JSON types."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _arrays(value: Any) -> Any:
    """Lists of numbers (nested, rectangular) as float arrays, nulls as nan; the rest as read."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        try:
            return np.array(value, dtype=float)
        except (TypeError, ValueError):
            return [_arrays(v) for v in value]
    return value
