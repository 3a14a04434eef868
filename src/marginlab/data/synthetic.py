"""Synthetic binary data sets with known structure: separable Gaussians, XOR, Chizat-Bach clusters.

Labels are class indices: class 0 is the ``-1`` label, class 1 the ``+1`` label. Training and
test points come from separate random streams of ``seed``, so the test size never changes the
training points; within a split, drawing more points only appends rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from marginlab.data._common import as_float, as_int, check_draw_fits, seeded_rng
from marginlab.data.dataset import Splits
from marginlab.memory import check_fits

BINARY_CLASSES = ("-1", "+1")
CLUSTER_SAMPLINGS = ("disk", "radius")
"""How :func:`clusters` draws a point in its disk: uniform on the disk, or uniform radius."""
# Per cluster of a k x k grid: its center and label as arrays, the label permutation, and
# the centers as the Python floats that ``info`` lists (about 100 bytes in all).
CLUSTER_BYTES = 100
Draw = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _splits(
    name: str, draw: Draw, n: int, test_n: int, seed: int, info: dict, features: int
) -> Splits:
    """Draw the splits; ``draw(rng, m)`` returns ``m`` inputs of ``features`` features and
    their +-1 labels."""
    n, test_n = as_int("n", n, 1), as_int("test_n", test_n, 0)
    check_draw_fits(n + test_n, features)
    x_train, y_train = draw(seeded_rng(seed, f"{name}-train"), n)
    x_test, y_test = draw(seeded_rng(seed, f"{name}-test"), test_n) if test_n else (None, None)

    def classes(y_pm: np.ndarray | None) -> np.ndarray | None:
        return None if y_pm is None else (y_pm > 0).astype(np.int64)

    return Splits(x_train, classes(y_train), x_test, classes(y_test), BINARY_CLASSES, info)


def gaussians(
    *, n: int = 200, d: int = 10, margin: float = 0.5, test_n: int = 0, seed: int = 0
) -> Splits:
    """Two Gaussian classes split by a random hyperplane through the origin with a gap.

    A random unit vector ``w*`` is drawn; each point is ``z + margin * sign(<w*, z>) * w*``
    with ``z ~ N(0, I_d)``, labelled ``sign(<w*, z>)``. Every point then has
    ``y <w*, x> = |<w*, z>| + margin >= margin``, so the max margin of a linear classifier
    without bias is at least ``margin``. ``info`` holds ``w_star`` and ``w_star_margin``,
    the training set's exact margin under ``w*``.

    Examples
    --------
    >>> s = gaussians(n=50, d=3, margin=0.2)
    >>> bool(s.info["w_star_margin"] >= 0.2)
    True
    """
    d, margin = as_int("d", d, 1), as_float("margin", margin, 0.0)
    # before w, itself d numbers (the draw checks again, as every synthetic draw does)
    check_draw_fits(as_int("n", n, 1) + as_int("test_n", test_n, 0), d)
    w = seeded_rng(seed, "gaussians-w").standard_normal(d)
    w /= np.linalg.norm(w)

    def draw(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.standard_normal((m, d))
        y = np.where(z @ w >= 0, 1.0, -1.0)
        return z + (margin * y)[:, None] * w, y

    splits = _splits("gaussians", draw, n, test_n, seed, {"w_star": w.tolist()}, d)
    splits.info["w_star_margin"] = float(np.min((2 * splits.y_train - 1) * (splits.x_train @ w)))
    return splits


_XOR_CENTERS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])


def xor(*, n: int = 4, noise: float = 0.0, test_n: int = 0, seed: int = 0) -> Splits:
    """The 2-d XOR problem: clusters at ``(+-1, +-1)`` with label ``y = c_1 c_2`` of the center.

    Point ``i`` belongs to center ``i mod 4`` (centers in the order (1, 1), (1, -1), (-1, -1),
    (-1, 1)), so labels alternate and every 4 consecutive points are balanced. ``noise`` is
    the standard deviation of isotropic Gaussian noise added to the center. The defaults give
    the four points themselves.

    Examples
    --------
    >>> s = xor()
    >>> s.x_train.tolist(), s.y_train.tolist()
    ([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]], [1, 0, 1, 0])
    """
    noise = as_float("noise", noise, 0.0)

    def draw(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
        centers = _XOR_CENTERS[np.arange(m) % 4]
        return centers + noise * rng.standard_normal((m, 2)), centers[:, 0] * centers[:, 1]

    return _splits("xor", draw, n, test_n, seed, {"centers": _XOR_CENTERS.tolist()}, 2)


def cluster_centers(k: int) -> np.ndarray:
    """Return the ``k*k`` Chizat-Bach cluster centers, cluster ``p`` at grid cell (p mod k, p // k).

    Center coordinates are ``Delta (1 + 3 i) - 1/2`` for ``i = 0..k-1``, ``Delta = 1/(3k - 1)``.

    Examples
    --------
    >>> (cluster_centers(3) * 8).tolist()[:4]
    [[-3.0, -3.0], [0.0, -3.0], [3.0, -3.0], [-3.0, 0.0]]
    """
    delta = 1.0 / (3 * k - 1)
    grid = delta * (1 + 3 * np.arange(k)) - 0.5
    p = np.arange(k * k)
    return np.stack([grid[p % k], grid[p // k]], axis=1)


def clusters(
    *,
    n: int = 256,
    d: int = 15,
    k: int = 3,
    test_n: int = 4000,
    labels: str = "random",
    distribution: int | None = None,
    sampling: str = "disk",
    seed: int = 0,
) -> Splits:
    """Chizat & Bach (2020): k x k clusters in 2 informative dimensions plus spurious ones.

    ``x = (1, c_P + R (cos T, sin T), s)`` in ``R^d``: the first coordinate is the constant
    bias input (counted in ``d``), ``P ~ U{k^2 clusters}``, ``T ~ U[0, 2 pi)``, centers
    from :func:`cluster_centers`, ``Delta = 1/(3k - 1)``, and ``s`` holds ``d - 3`` spurious
    coordinates i.i.d. ``U[-1/2, 1/2]``. The label is ``A_P``.

    ``sampling="disk"`` (the paper's text): points uniform on the disk of radius ``Delta``,
    ``R = Delta sqrt(U)``. ``sampling="radius"`` (the reference notebook): ``R ~ U[0, Delta]``,
    uniform in radius, which crowds the points toward the centres.

    ``labels="random"`` (the paper's code): ``A`` is +1 except for ``floor(k^2 / 2)``
    clusters chosen at random, fixed by ``distribution`` (default: ``seed``) so that one
    distribution can be sampled with many seeds. ``labels="checkerboard"``: ``A_P = +1``
    iff the grid cell ``(P mod k) + (P // k)`` is even. ``info`` holds ``centers``,
    ``cluster_labels`` (``A``), ``delta``, ``sampling`` and, for random labels, the
    ``distribution`` used.

    Examples
    --------
    >>> s = clusters(n=5, d=4, test_n=0)
    >>> s.x_train.shape, s.x_train[:, 0].tolist()
    ((5, 4), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    d, k = as_int("d", d, 3), as_int("k", k, 2)
    check_fits(CLUSTER_BYTES * k * k, f"k: {k} x {k} clusters", "use a smaller k")
    if sampling not in CLUSTER_SAMPLINGS:
        raise ValueError(
            f"sampling: expected one of {CLUSTER_SAMPLINGS} ('disk': the paper's, 'radius': "
            f"the reference notebook's), got {sampling!r}"
        )
    centers, delta = cluster_centers(k), 1.0 / (3 * k - 1)
    info: dict = {"centers": centers.tolist(), "delta": delta, "sampling": sampling}
    if labels == "random":
        dist_seed = seed if distribution is None else as_int("distribution", distribution, 0)
        a = np.ones(k * k)
        a[seeded_rng(dist_seed, "clusters-labels").permutation(k * k)[: k * k // 2]] = -1.0
        info["distribution"] = dist_seed
    elif labels == "checkerboard":
        p = np.arange(k * k)
        a = np.where((p % k + p // k) % 2 == 0, 1.0, -1.0)
    else:
        raise ValueError(f"labels must be 'random' or 'checkerboard', got {labels!r}")

    def draw(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
        # One row of uniforms per point keeps draws of different sizes prefixes of each other.
        u = rng.random((m, d))
        p = np.minimum((u[:, 0] * k * k).astype(np.int64), k * k - 1)
        angle = 2 * math.pi * u[:, 1]
        radius = delta * (np.sqrt(u[:, 2]) if sampling == "disk" else u[:, 2])
        x = np.empty((m, d))
        x[:, 0] = 1.0
        x[:, 1:3] = centers[p] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        x[:, 3:] = u[:, 3:] - 0.5
        return x, a[p]

    info["cluster_labels"] = a.astype(int).tolist()
    return _splits("clusters", draw, n, test_n, seed, info, d)
