"""What the machine can hold: the memory available now, and byte counts people can read.

Sizes that a config sets (a data set's ``n``, a network's width) are checked against
:func:`available_memory` before anything is allocated, so that an input asking for more
than the machine has is refused in one line instead of swapping or being killed.
"""

from __future__ import annotations

from pathlib import Path


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``); None where
    it cannot be read.

    Examples
    --------
    >>> available = available_memory()
    >>> available is None or available > 0
    True
    """
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def format_bytes(count: float) -> str:
    """``count`` bytes in decimal units, three significant digits.

    Examples
    --------
    >>> format_bytes(6400), format_bytes(3.2e10)
    ('6.4 KB', '32 GB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.5g} TB"


def check_fits(needed: int, what: str, fix: str) -> None:
    """Raise ``ValueError`` when ``needed`` bytes exceed the memory available now.

    ``what`` names the fields and says what needs the memory; ``fix`` says what to do. The
    message reads ``"{what} need about {needed}, more than the {available} of memory
    available; {fix}"``. Where the available memory cannot be read, nothing is refused.

    Examples
    --------
    >>> check_fits(6400, "n, test_n: 100 points of 2 features", "draw fewer points")
    """
    available = available_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"{what} need about {format_bytes(needed)}, more than the "
            f"{format_bytes(available)} of memory available; {fix}"
        )
