"""Selecting classes and examples: the filters applied after loading, before scaling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from marginlab.data._common import as_int

SUBSET_MODES = ("first", "random")


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int], n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the examples of ``classes`` and relabel them ``0..len(classes)-1`` in that order.

    Raises ``ValueError`` unless ``classes`` are distinct labels in ``0..n_classes-1``.

    Examples
    --------
    >>> x, y = np.arange(5), np.array([0, 1, 2, 1, 0])
    >>> [a.tolist() for a in select_classes(x, y, [1, 0], n_classes=3)]
    [[0, 1, 3, 4], [1, 0, 0, 1]]
    """
    chosen = [as_int("classes[]", c, 0) for c in classes]
    if not chosen or len(set(chosen)) != len(chosen) or max(chosen) >= n_classes:
        raise ValueError(
            f"classes must be distinct labels in 0..{n_classes - 1}, got {list(classes)}"
        )
    relabel = np.full(n_classes, -1, np.int64)
    relabel[chosen] = np.arange(len(chosen))
    new = relabel[y]
    keep = new >= 0
    return x[keep], new[keep]


def take(
    x: np.ndarray,
    y: np.ndarray,
    n: int,
    mode: str,
    rng: np.random.Generator,
    what: str = "n",
) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``n`` examples: the first ``n`` (``mode="first"``) or a random ``n`` (``"random"``).

    A random subset keeps the original order of the rows it picks. ``what`` names the count
    in the error raised when ``n`` exceeds the examples available.

    Examples
    --------
    >>> x = np.arange(10)
    >>> take(x, x, 3, "first", np.random.default_rng(0))[0].tolist()
    [0, 1, 2]
    """
    n = as_int(what, n, 1)
    if n > len(x):
        raise ValueError(f"{what}={n} exceeds the {len(x)} examples available")
    if mode == "first":
        return x[:n], y[:n]
    if mode == "random":
        rows = np.sort(rng.choice(len(x), n, replace=False))
        return x[rows], y[rows]
    raise ValueError(f"subset must be one of {', '.join(SUBSET_MODES)}; got {mode!r}")
