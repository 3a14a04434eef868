"""The :class:`Dataset` every loader returns, and the raw splits loaders build it from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set with an optional test split, ready for training.

    ``eq=False``: comparing tensors elementwise would make ``==`` ambiguous, so data sets
    compare by identity.

    Attributes
    ----------
    name : str
        Registry name (``"mnist"``, ``"clusters"``, ...) or any label for user data.
    x_train, x_test : torch.Tensor
        Inputs, float64 as loaded: images ``(N, C, H, W)``, vectors ``(N, d)``.
        ``x_test`` is ``None`` when there is no test split.
    y_train, y_test : torch.Tensor
        int64 class indices ``0 .. n_classes-1``. For binary sets class 1 is the ``+1`` label.
    n_classes : int
        Number of classes.
    classes : tuple of str
        Human-readable class names in label order.
    info : dict
        Provenance: source files, parameters, subset applied, seed, synthetic ground truth.

    Examples
    --------
    >>> import torch
    >>> ds = Dataset("toy", torch.zeros(4, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1]),
    ...              None, None, 2, ("-1", "+1"), {})
    >>> ds.input_shape, ds.n_train, ds.n_test
    ((2,), 4, 0)
    >>> ds.to(dtype=torch.float32).x_train.dtype
    torch.float32
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    n_classes: int
    classes: tuple[str, ...]
    info: dict

    def __post_init__(self) -> None:
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test must both be given or both be None")
        splits = [("train", self.x_train, self.y_train)]
        if self.x_test is not None:
            splits.append(("test", self.x_test, self.y_test))
        for split, x, y in splits:
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise ValueError(
                    f"y_{split} must be a 1-d int64 tensor with one label per row of x_{split}; "
                    f"got dtype {y.dtype}, shape {tuple(y.shape)} for {len(x)} inputs"
                )
        if len(self.classes) != self.n_classes:
            raise ValueError(f"{len(self.classes)} class names given for {self.n_classes} classes")
        for split, x, y in splits:
            _check_split(split, x, y, self.n_classes)
        if self.x_test is not None and self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(
                f"x_test: samples of shape {tuple(self.x_test.shape[1:])} but x_train has "
                f"{tuple(self.x_train.shape[1:])}; both splits need the same input shape"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``x_train.shape[1:]``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return len(self.x_train)

    @property
    def n_test(self) -> int:
        """Number of test examples (0 without a test split)."""
        return 0 if self.x_test is None else len(self.x_test)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Dataset:
        """Return a copy on ``device`` with inputs in ``dtype``; labels stay int64."""

        def move(t: torch.Tensor | None, dt: torch.dtype | None) -> torch.Tensor | None:
            return None if t is None else t.to(device=device, dtype=dt)

        return dataclasses.replace(
            self,
            x_train=move(self.x_train, dtype),
            y_train=move(self.y_train, None),
            x_test=move(self.x_test, dtype),
            y_test=move(self.y_test, None),
        )

    def __repr__(self) -> str:
        # The dataclass default would print every tensor element.
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"input_shape={self.input_shape}, n_classes={self.n_classes})"
        )


def _check_split(split: str, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> None:
    """Refuse a split that training cannot use: empty, non-finite inputs, labels out of range."""
    if len(x) == 0 or x.dim() < 2:
        raise ValueError(
            f"x_{split}: the {split} set is empty or not a batch of samples (shape "
            f"{tuple(x.shape)}); it needs at least one sample"
        )
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x).flatten(1).all(dim=1)
        if bad.any():
            first = int(bad.nonzero()[0])
            raise ValueError(
                f"x_{split}: {int(bad.sum())} sample(s) hold NaN or infinite values (the "
                f"first is sample {first}); remove or repair them before training"
            )
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_classes:
        wrong = low if low < 0 else high
        raise ValueError(
            f"y_{split}: label {wrong} is outside 0..{n_classes - 1} ({n_classes} classes)"
        )


class Splits(NamedTuple):
    """What a loader returns: numpy arrays before class filtering, subsetting and scaling.

    Keeping images as ``uint8`` until after subsetting avoids float64 copies of rows that
    are thrown away. Inputs become ``float64 x / scale``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: tuple[str, ...]
    info: dict
    scale: float = 1.0
