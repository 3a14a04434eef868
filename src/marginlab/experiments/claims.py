"""A paper's claims, each checked against a number we measured: one row per claim.

A :class:`Claim` holds what the paper says (a number or a qualitative statement), what we
measured, the tolerance that decides, and the verdict: ``PASS``, ``FAIL`` or ``NOT RUN``
(with the reason, e.g. a scale that does not include the experiment, or missing data).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
VERDICTS = (PASS, FAIL, NOT_RUN)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and its verdict.

    Attributes
    ----------
    paper : str
        The paper's key (``lyu-li``, ``chizat-bach``, ``vardi``, ``cai``, ``soudry``).
    key : str
        A short stable identifier, unique within the paper (e.g. ``smoothed-margin-monotone``).
    statement : str
        What the paper claims, in one sentence.
    paper_value : str or None
        The paper's number or qualitative statement; None when the paper gives no number
        we could verify (ours is then reported alone).
    ours : str or None
        What we measured, as text; None when not run.
    tolerance : str
        The criterion that decides the verdict.
    verdict : str
        ``PASS``, ``FAIL`` or ``NOT RUN``.
    note : str
        The reason of a ``NOT RUN``, or what a reader should know about the measurement.

    Examples
    --------
    >>> c = check("soudry", "loss-rate", "the loss falls as 1/t", ours=-0.99,
    ...           passed=True, tolerance="slope in [-1.1, -0.9]", paper_value="slope -1")
    >>> c.verdict, c.ours
    ('PASS', '-0.99')
    """

    paper: str
    key: str
    statement: str
    paper_value: str | None
    ours: str | None
    tolerance: str
    verdict: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {VERDICTS}, got {self.verdict!r}")


def _text(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def check(
    paper: str,
    key: str,
    statement: str,
    *,
    ours: object,
    passed: bool,
    tolerance: str,
    paper_value: str | None = None,
    note: str = "",
) -> Claim:
    """A measured claim: PASS when ``passed`` is true, otherwise FAIL.

    Numbers in ``ours`` are shown with four significant digits; a NaN never passes.
    """
    if isinstance(ours, float) and math.isnan(ours):
        passed = False
    return Claim(
        paper, key, statement, paper_value, _text(ours), tolerance, PASS if passed else FAIL, note
    )


def not_run(
    paper: str,
    key: str,
    statement: str,
    reason: str,
    *,
    tolerance: str = "",
    paper_value: str | None = None,
) -> Claim:
    """A claim that was not measured, and why.

    Examples
    --------
    >>> not_run("lyu-li", "cifar-vgg", "VGG-16 on CIFAR-10", "full scale only").verdict
    'NOT RUN'
    """
    return Claim(paper, key, statement, paper_value, None, tolerance, NOT_RUN, reason)


def write_claims(claims: Iterable[Claim], path: str | os.PathLike, **meta: object) -> Path:
    """Write ``{"meta": ..., "claims": [...]}`` as JSON (atomically) and return the path.

    Examples
    --------
    >>> import tempfile
    >>> claims = [not_run("cai", "cifar-margin", "margin grows", "ci scale")]
    >>> path = write_claims(claims, tempfile.mkdtemp() + "/claims.json", scale="ci")
    >>> read_claims(path) == claims
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "claims": [asdict(c) for c in claims]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)
    return path


def read_claims(path: str | os.PathLike) -> list[Claim]:
    """Read the claims written by :func:`write_claims`."""
    return [Claim(**row) for row in json.loads(Path(path).read_text())["claims"]]


def counts(claims: Iterable[Claim]) -> dict[str, int]:
    """How many claims have each verdict.

    Examples
    --------
    >>> counts([not_run("cai", "k", "s", "ci scale")])
    {'PASS': 0, 'FAIL': 0, 'NOT RUN': 1}
    """
    result = dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        result[claim.verdict] += 1
    return result
