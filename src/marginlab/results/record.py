"""What every result record shares: a versioned JSON file that only the record reads.

A record is a frozen dataclass with a file of its own in a run directory. Its JSON carries
``format`` and ``version``; a file written before versions existed reads as version 1, and
one that cannot be read is refused with the command that writes it again.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from marginlab.runs.run import Run

R = TypeVar("R", bound="Record")


class RecordError(ValueError):
    """A result file that its record cannot read: damaged, or of another format or version."""


def shown(value: float | None, spec: str = ".4g") -> str:
    """A number as the records print it: ``-`` for a missing or nan value.

    Examples
    --------
    >>> shown(None), shown(float("nan")), shown(-2.345, ".2f")
    ('-', '-', '-2.35')
    """
    return "-" if value is None or math.isnan(value) else format(value, spec)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no nan or inf: they are written as null.

    Examples
    --------
    >>> finite_or_none(float("inf")) is None, finite_or_none(2.0)
    (True, 2.0)
    """
    return None if value is None or not math.isfinite(value) else float(value)


def or_nan(value: float | None) -> float:
    """A JSON number back as a float: null reads as nan."""
    return math.nan if value is None else float(value)


class Record:
    """Base of result records: ``to_json``/``from_json``, ``save`` into a run and ``load``.

    A subclass sets :attr:`FORMAT`, :attr:`VERSION`, :attr:`REGENERATE` and implements
    ``_payload`` (its JSON object without ``format`` and ``version``) and
    ``_from_payload(payload, version)``, reading every version up to :attr:`VERSION`.
    """

    FORMAT: ClassVar[str]
    """The ``format`` field of the file, e.g. ``"marginlab.kkt"``."""
    VERSION: ClassVar[int]
    """The version written."""
    REGENERATE: ClassVar[str]
    """The command that writes the file again, for the message of an unreadable one."""

    @property
    def file_name(self) -> str:
        """The record's file name in a run directory."""
        raise NotImplementedError

    def _payload(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_payload(cls: type[R], payload: dict[str, Any], version: int) -> R:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the file (only JSON types, no nan or inf)."""
        return {"format": self.FORMAT, "version": self.VERSION, **self._payload()}

    def to_json(self) -> str:
        """The file's text."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls: type[R], payload: Any, source: str = "the file") -> R:
        """Read a JSON object of any version this code knows; :class:`RecordError` if not."""
        if not isinstance(payload, dict):
            raise cls._unreadable(source, "it holds no JSON object")
        written = payload.get("format", cls.FORMAT)
        version = payload.get("version", 1)
        if written != cls.FORMAT:
            raise cls._unreadable(source, f"it is a {written!r} file, not {cls.FORMAT!r}")
        if not isinstance(version, int) or version > cls.VERSION:
            raise cls._unreadable(
                source, f"it has version {version!r}; this marginlab reads up to {cls.VERSION}"
            )
        try:
            return cls._from_payload(payload, version)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise cls._unreadable(source, f"a field is missing or malformed ({error!r})") from None

    @classmethod
    def from_json(cls: type[R], text: str, source: str = "the file") -> R:
        """Read the file's text."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise cls._unreadable(source, f"it is not JSON ({error})") from None
        return cls.from_dict(payload, source)

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        """Read a record's file."""
        path = Path(path)
        return cls.from_json(path.read_text(encoding="utf-8"), str(path))

    def save(self, run: Run) -> Path:
        """Write the record into ``run``'s directory (atomically); returns the file."""
        return run.store.write_json(self.file_name, self.to_dict())

    @classmethod
    def _unreadable(cls, source: str, why: str) -> RecordError:
        return RecordError(
            f"{source}: cannot read it as {cls.FORMAT} ({why}); regenerate it with "
            f"`{cls.REGENERATE}`"
        )
