"""scikit-learn's 8x8 digits: 1797 real images that ship inside the wheel, no files needed."""

from __future__ import annotations

import numpy as np

from marginlab.data._common import seeded_rng
from marginlab.data.dataset import Splits

DIGITS_CLASSES = tuple(str(i) for i in range(10))


def load_digits(*, test_fraction: float | None = None, seed: int = 0) -> Splits:
    """Load ``sklearn.datasets.load_digits`` as images ``(1797, 1, 8, 8)`` with pixels 0..16.

    All images are training data unless ``test_fraction`` is given: then a seeded random
    ``round(test_fraction * 1797)`` of them form the test split. Both splits keep the
    original order.

    Examples
    --------
    >>> splits = load_digits(test_fraction=0.2)
    >>> len(splits.x_train), len(splits.x_test)
    (1438, 359)
    """
    # Imported here: scikit-learn takes about a second to import and only this loader needs it.
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x = data.images[:, None]
    y = data.target.astype(np.int64)
    info = {"source": "sklearn.datasets.load_digits"}
    if test_fraction is None:
        return Splits(x, y, None, None, DIGITS_CLASSES, info, scale=16.0)
    n_test = round(float(test_fraction) * len(x))
    if not 0 < n_test < len(x):
        raise ValueError(
            f"test_fraction={test_fraction} leaves {n_test} of {len(x)} digits for testing; "
            "it must leave at least one in each split"
        )
    order = seeded_rng(seed, "digits-split").permutation(len(x))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return Splits(x[train], y[train], x[test], y[test], DIGITS_CLASSES, info, scale=16.0)
