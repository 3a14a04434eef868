"""Checkpoint specs: ``"last"``, an epoch (``500``) or a loss level (``1e-20``, ``1e-882``).

Every command that takes a checkpoint and :meth:`marginlab.runs.run.Run.checkpoint` parse
them here, so the same text selects the same checkpoint everywhere. A loss level is kept as
the exact base-10 logarithm of the decimal the user wrote: ``1e-400`` has no float64 (it
would read as 0), but its logarithm, -400, does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


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
    ValueError
        Naming the spec and the accepted forms.

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
        raise ValueError(f"checkpoint: {spec!r} is not a checkpoint; expected {SPEC_HELP}")
    if isinstance(spec, int):
        if spec < 0:
            raise ValueError(f"checkpoint: epoch {spec} is negative; expected {SPEC_HELP}")
        return CheckpointSpec(str(spec), epoch=spec)
    text = repr(spec) if isinstance(spec, float) else str(spec).strip()
    if text == "last":
        return LAST
    if text.isdigit():
        return CheckpointSpec(text, epoch=int(text))
    try:
        level = Decimal(text)
    except InvalidOperation:
        level = None
    if level is None or not level.is_finite() or level <= 0:
        raise ValueError(f"checkpoint: {text!r} is not a checkpoint; expected {SPEC_HELP}")
    return CheckpointSpec(text, log10_level=float(level.log10()))
