"""A paper's claims: what each says, the criterion that decides it, and the verdicts.

Every claim a reproduction checks is declared once, as a :class:`ClaimSpec`: the statement,
where it comes from (read in the paper, or ours), the tolerance and where its numbers come
from, the scales that measure it, and its **criterion**: a pure function from measured data
(a trajectory table or a few numbers) to a :class:`Judgement`. A reproduction measures, then
hands the measurements to the criterion; nothing else decides a verdict. The test suite
feeds every criterion an input a false statement or a broken trainer would produce, which
must FAIL, and one that must PASS.

A :class:`Claim` is one row of the result: the verdict ``PASS``, ``FAIL`` or ``NOT RUN``
(with the reason: a scale that does not include the experiment, or missing data).
``claims.json`` is written and read here (:func:`write_claims`, :func:`read_claims`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
VERDICTS = (PASS, FAIL, NOT_RUN)
SCALES = ("ci", "cpu", "full")
SOURCES = ("paper", "paper, submission", "ours")
"""Where a claim comes from: read in the published text, read in Lyu & Li's submission (the
only text of theirs that was read), or ours (a construction, setting or threshold we chose).
See ``shared/papers/published-text.md``."""

CLAIMS_FORMAT = 2
"""Version of ``claims.json``; version 1 rows had no ``source`` or ``criterion``."""


@dataclass(frozen=True)
class Judgement:
    """What a criterion concluded from the measurements.

    Attributes
    ----------
    ours : str
        What we measured, as text.
    passed : bool
        Whether the measurements satisfy the claim.
    tolerance : str or None
        The rule with this run's numbers, when they depend on the scale; None: the spec's.
    note : str
        What a reader should know about the measurement.
    """

    ours: str
    passed: bool
    tolerance: str | None = None
    note: str = ""


Criterion = Callable[..., Judgement]


@dataclass(frozen=True)
class ClaimSpec:
    """One claim of a paper, declared once: statement, source, tolerance and criterion.

    Attributes
    ----------
    paper : str
        The paper's key (``lyu-li``, ``chizat-bach``, ``vardi``, ``cai``, ``soudry``).
    key : str
        Stable identifier, unique within the paper.
    statement : str
        What the claim says, in one sentence.
    source : str
        Where it comes from: ``"paper"``, ``"paper, submission"`` or ``"ours"``, followed by
        the place (``"paper (Fig. 2b)"``, ``"ours (construction V4)"``).
    criterion : callable
        Pure function of the measurements (keyword arguments) returning a
        :class:`Judgement`.
    tolerance : str
        The rule that decides, and where its numbers come from (the paper, a theorem's
        constant, a measured spread, or a choice of ours made before measuring).
    paper_value : str or None
        The paper's number or qualitative statement; None when the paper gives none.
    scales : tuple of str
        The scales that measure the claim; at the others its row is NOT RUN.
    needs : str
        What the scales that do not measure it lack (said in their NOT RUN row).

    Examples
    --------
    >>> spec = ClaimSpec("soudry", "loss-rate", "the loss falls as 1/t", "paper (Thm 3)",
    ...                  lambda slope: Judgement(f"{slope:.3g}", abs(slope + 1) < 0.1),
    ...                  "slope within 0.1 of -1")
    >>> spec.judge(slope=-0.98).verdict
    'PASS'
    """

    paper: str
    key: str
    statement: str
    source: str
    criterion: Criterion
    tolerance: str
    paper_value: str | None = None
    scales: tuple[str, ...] = SCALES
    needs: str = ""

    def __post_init__(self) -> None:
        if not self.source.startswith(SOURCES):
            raise ValueError(
                f"source: expected to start with one of {SOURCES}, got {self.source!r}"
            )
        unknown = set(self.scales) - set(SCALES)
        if unknown:
            raise ValueError(f"scales: unknown {sorted(unknown)}; expected a subset of {SCALES}")

    @property
    def criterion_name(self) -> str:
        return getattr(self.criterion, "__name__", "criterion")

    def judge(self, **measured: Any) -> Claim:
        """The claim's row for these measurements."""
        result = self.criterion(**measured)
        verdict = PASS if result.passed else FAIL
        return self._row(result.ours, verdict, result.tolerance, result.note)

    def failed(self, ours: str, note: str = "") -> Claim:
        """A FAIL row without a measurement (the experiment broke, or was never measured)."""
        return self._row(ours, FAIL, None, note)

    def not_run(self, reason: str) -> Claim:
        """A NOT RUN row, with the reason."""
        return Claim(
            self.paper,
            self.key,
            self.statement,
            self.paper_value,
            None,
            self.tolerance,
            NOT_RUN,
            reason,
            self.source,
            self.criterion_name,
        )

    def _row(self, ours: str, verdict: str, tolerance: str | None, note: str) -> Claim:
        return Claim(
            self.paper,
            self.key,
            self.statement,
            self.paper_value,
            ours,
            tolerance or self.tolerance,
            verdict,
            note,
            self.source,
            self.criterion_name,
        )


@dataclass(frozen=True)
class Claim:
    """One row of a reproduction's result: a claim and its verdict.

    Attributes
    ----------
    paper, key, statement, paper_value, tolerance, source
        As in :class:`ClaimSpec`.
    ours : str or None
        What we measured; None when not run.
    verdict : str
        ``PASS``, ``FAIL`` or ``NOT RUN``.
    note : str
        The reason of a ``NOT RUN``, or what a reader should know about the measurement.
    criterion : str
        The name of the function that decided.
    """

    paper: str
    key: str
    statement: str
    paper_value: str | None
    ours: str | None
    tolerance: str
    verdict: str
    note: str = ""
    source: str = "ours"
    criterion: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {VERDICTS}, got {self.verdict!r}")


def text(value: object) -> str:
    """A measured value as text: floats with four significant digits, lists bracketed.

    Examples
    --------
    >>> text([1.23456, 2.0]), text(float("nan"))
    ('[1.235, 2]', 'nan')
    """
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(text(v) for v in value) + "]"
    return str(value)


def write_claims(claims: Iterable[Claim], path: str | os.PathLike, **meta: object) -> Path:
    """Write ``{"format": 2, "meta": ..., "claims": [...]}`` as JSON, atomically.

    Examples
    --------
    >>> import tempfile
    >>> spec = ClaimSpec("cai", "k", "s", "ours", lambda: Judgement("1", True), "t")
    >>> claims = [spec.not_run("ci scale")]
    >>> path = write_claims(claims, tempfile.mkdtemp() + "/claims.json", scale="ci")
    >>> read_claims(path) == claims
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CLAIMS_FORMAT, "meta": meta, "claims": [asdict(c) for c in claims]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)
    return path


def read_claims(path: str | os.PathLike) -> list[Claim]:
    """Read the claims written by :func:`write_claims` (format 1 rows get ``source`` "ours"
    and no criterion name; a newer format is refused)."""
    payload = json.loads(Path(path).read_text())
    version = payload.get("format", 1)
    if version > CLAIMS_FORMAT:
        raise ValueError(
            f"{path}: claims format {version} is newer than this marginlab reads "
            f"({CLAIMS_FORMAT}); upgrade marginlab or run `marginlab reproduce` again"
        )
    names = {f.name for f in fields(Claim)}
    return [Claim(**{k: v for k, v in row.items() if k in names}) for row in payload["claims"]]


def counts(claims: Iterable[Claim]) -> dict[str, int]:
    """How many claims have each verdict.

    Examples
    --------
    >>> spec = ClaimSpec("cai", "k", "s", "ours", lambda: Judgement("1", True), "t")
    >>> counts([spec.not_run("ci scale")])
    {'PASS': 0, 'FAIL': 0, 'NOT RUN': 1}
    """
    result = dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        result[claim.verdict] += 1
    return result
