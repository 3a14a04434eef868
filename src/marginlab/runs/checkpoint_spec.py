"""Checkpoint specs: ``"last"``, an epoch (``500``) or a loss level (``1e-20``, ``1e-882``).

Every command that takes a checkpoint and :meth:`marginlab.runs.run.Run.checkpoint` parse
them here, so the same text selects the same checkpoint everywhere. A loss level is kept as
the exact base-10 logarithm of the decimal the user wrote: ``1e-400`` has no float64 (it
would read as 0), but its logarithm, -400, does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol, TypeVar

from marginlab.errors import UserError


class CheckpointSpecError(UserError, ValueError):
    """A checkpoint spec that is none of the accepted forms."""


class CheckpointNotFoundError(UserError, KeyError):
    """A checkpoint spec that no kept checkpoint matches."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class Kept(Protocol):
    """What selection reads of a kept checkpoint."""

    epoch: int
    log10_loss_mean: float | None


K = TypeVar("K", bound=Kept)


@dataclass(frozen=True)
class CheckpointSpec:
    """A parsed checkpoint spec.

    Attributes
    ----------
    text : str
        The spec as written (``"last"``, ``"500"``, ``"1e-400"``).
    epoch : int or None
        The epoch of an epoch spec.
    log10_level : float or None
        ``log10`` of a loss level: the first kept checkpoint whose mean training loss is
        below it is selected.
    """

    text: str
    epoch: int | None = None
    log10_level: float | None = None

    @property
    def is_last(self) -> bool:
        return self.epoch is None and self.log10_level is None

    def __str__(self) -> str:
        return self.text


LAST = CheckpointSpec("last")

SPEC_HELP = "'last', an epoch (e.g. 500) or a loss level (e.g. 1e-20 or 1e-400)"


def parse_checkpoint(spec: str | int | float | CheckpointSpec) -> CheckpointSpec:
    """Parse ``"last"``, an epoch or a positive loss level, exactly.

    An ``int`` (or digits) is an epoch; a ``float`` or any other decimal is a loss level.

    Raises
    ------
    CheckpointSpecError
        Naming the spec and the accepted forms (a :class:`~marginlab.errors.UserError`).

    Examples
    --------
    >>> parse_checkpoint("1e-400").log10_level
    -400.0
    >>> parse_checkpoint("500").epoch, parse_checkpoint(1e-20).log10_level
    (500, -20.0)
    >>> parse_checkpoint("last").is_last
    True
    """
    if isinstance(spec, CheckpointSpec):
        return spec
    if isinstance(spec, bool):
        raise CheckpointSpecError(f"checkpoint: {spec!r} is not a checkpoint; expected {SPEC_HELP}")
    if isinstance(spec, int):
        if spec < 0:
            raise CheckpointSpecError(f"checkpoint: epoch {spec} is negative; expected {SPEC_HELP}")
        return CheckpointSpec(str(spec), epoch=spec)
    text = repr(spec) if isinstance(spec, float) else str(spec).strip()
    if text == "last":
        return LAST
    if text.isascii() and text.isdigit():  # "²" is a digit that int() refuses
        return CheckpointSpec(text, epoch=int(text))
    try:
        level = Decimal(text)
    except InvalidOperation:
        level = None
    if level is None or not level.is_finite() or level <= 0:
        raise CheckpointSpecError(f"checkpoint: {text!r} is not a checkpoint; expected {SPEC_HELP}")
    return CheckpointSpec(text, log10_level=float(level.log10()))


def select_checkpoint(
    kept: Sequence[K], which: str | int | float | CheckpointSpec, where: Path
) -> K:
    """Pick from ``kept`` (ordered by epoch) the checkpoint ``which`` names (see
    :func:`parse_checkpoint`; a loss level picks the first kept checkpoint below it).

    Examples
    --------
    >>> from marginlab.runs.store import Checkpoint
    >>> kept = [Checkpoint(0, -0.3, Path("a"), "init"), Checkpoint(9, -21.0, Path("b"), "last")]
    >>> [select_checkpoint(kept, w, Path(".")).epoch for w in ("last", 0, "1e-20")]
    [9, 0, 9]
    """
    spec = parse_checkpoint(which)
    if not kept:
        raise CheckpointNotFoundError(f"{where}: the run has no checkpoints")
    if spec.is_last:
        return kept[-1]
    if spec.epoch is not None:
        for checkpoint in kept:
            if checkpoint.epoch == spec.epoch:
                return checkpoint
        epochs = sorted({c.epoch for c in kept})
        raise CheckpointNotFoundError(
            f"checkpoint: no checkpoint at epoch {spec.epoch}; kept epochs: {epochs}"
        )
    for checkpoint in kept:
        if checkpoint.log10_loss_mean is not None and checkpoint.log10_loss_mean < spec.log10_level:
            return checkpoint
    raise CheckpointNotFoundError(
        f"checkpoint: the training loss never fell below {spec} in kept checkpoints"
    )
