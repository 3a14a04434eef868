"""Argument checks shared by the zoo constructors; every message names the argument."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an ``int >= 1`` (not a bool), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_ints(name: str, values: Any) -> tuple[int, ...]:
    """Return ``values`` as a tuple of positive ints (a bare int or string is refused)."""
    if isinstance(values, (int, str)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a sequence of positive integers, got {values!r}")
    values = tuple(values)
    for value in values:
        positive_int(f"{name} entry", value)
    return values


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def seed(value: Any) -> int:
    """Return ``value`` if it is an int seed (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"seed must be an integer, got {value!r}")
    return value


def positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number > 0."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)
