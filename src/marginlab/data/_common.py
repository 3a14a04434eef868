"""Helpers shared by the loaders: argument checks and named random streams."""

from __future__ import annotations

import math
import numbers
import operator
import zlib

import numpy as np

from marginlab.memory import check_fits


def as_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an ``int >= minimum`` or raise ``ValueError`` naming ``name``.

    Integral floats are accepted because YAML and JSON configs often produce them.

    Examples
    --------
    >>> as_int("n", 4.0, 1)
    4
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        if isinstance(value, bool):
            raise TypeError
        result = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {result}")
    return result


def as_float(name: str, value: object, minimum: float) -> float:
    """Return ``value`` as a finite ``float >= minimum`` or raise ``ValueError`` naming ``name``.

    Examples
    --------
    >>> as_float("noise", 1, 0.0)
    1.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value}")
    return float(value)


# Copies of a synthetic set that exist at once while it is drawn and handed to torch (the
# draw's temporaries, the float64 array, the tensor).
DRAW_COPIES = 4


def check_draw_fits(samples: int, features: int) -> None:
    """Refuse a synthetic draw of ``samples`` points of ``features`` float64 features that
    could not fit in the available memory, before any of it is allocated.

    Examples
    --------
    >>> check_draw_fits(100, 2)  # 6.4 KB: drawn
    """
    check_fits(
        DRAW_COPIES * 8 * samples * features,
        f"n, test_n: {samples} points of {features} features",
        "draw fewer points",
    )


def seeded_rng(seed: int, stream: str) -> np.random.Generator:
    """Return a generator for one named purpose of a seed.

    Each purpose (train draw, test draw, subset, ...) gets its own independent stream, so
    changing e.g. the test size never changes the training points.

    Examples
    --------
    >>> a = seeded_rng(0, "train").random()
    >>> a == seeded_rng(0, "train").random() != seeded_rng(0, "test").random()
    True
    """
    seed = as_int("seed", seed, 0)
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])
