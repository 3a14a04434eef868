"""The data set registry and :func:`load_dataset`, the one entry point for every source."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from marginlab.data._common import as_int, seeded_rng
from marginlab.data.cifar import load_cifar10
from marginlab.data.dataset import Dataset, Splits
from marginlab.data.digits import load_digits
from marginlab.data.files import load_file
from marginlab.data.idx import load_idx
from marginlab.data.subset import SUBSET_MODES, select_classes, take
from marginlab.data.synthetic import clusters, gaussians, xor

_SOURCES: dict[str, tuple[str, Callable[..., Splits]]] = {
    "digits": ("scikit-learn's 1797 8x8 handwritten digits, 10 classes (bundled)", load_digits),
    "mnist": (
        "MNIST digits, 60k train / 10k test, 1x28x28 (IDX files)",
        partial(load_idx, "mnist"),
    ),
    "fashion-mnist": (
        "Fashion-MNIST clothing, 60k train / 10k test, 1x28x28 (IDX files)",
        partial(load_idx, "fashion-mnist"),
    ),
    "cifar10": ("CIFAR-10 photos, 50k train / 10k test, 3x32x32 (binary records)", load_cifar10),
    "gaussians": ("two Gaussian classes split by a hyperplane with a known margin", gaussians),
    "xor": ("2-d XOR: clusters at (+-1, +-1) labelled by the product of signs", xor),
    "clusters": ("Chizat & Bach k x k clusters + spurious dims, bias input first", clusters),
    "file": (
        "your own arrays: .npz / .safetensors / .pt (x, y, x_test, y_test) or .csv",
        load_file,
    ),
}
DATASETS = MappingProxyType({name: description for name, (description, _) in _SOURCES.items()})
"""Registered data set names and their one-line descriptions."""

# Arguments load_dataset supplies itself, never user parameters.
_CONTEXT = ("data_dir", "seed")


def _loader(name: str) -> tuple[str, Callable[..., Splits]]:
    key = name.strip().lower().replace("_", "-")
    if key not in _SOURCES:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(_SOURCES)}")
    return key, _SOURCES[key][1]


def dataset_params(name: str) -> dict[str, Any]:
    """Return the parameters a data set accepts through ``load_dataset(**params)``, with defaults.

    Examples
    --------
    >>> dataset_params("xor")
    {'n': 4, 'noise': 0.0, 'test_n': 0}
    """
    _, loader = _loader(name)
    return {
        p.name: p.default
        for p in inspect.signature(loader).parameters.values()
        if p.name not in _CONTEXT
    }


def _inputs(x: np.ndarray, scale: float) -> torch.Tensor:
    x = np.array(x, dtype=np.float64)  # a copy: loaders may hand out read-only or mapped arrays
    if scale != 1.0:
        x /= scale
    return torch.from_numpy(x)


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    classes: Sequence[int] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    subset: str = "first",
    seed: int = 0,
    **params: Any,
) -> Dataset:
    """Load a registered data set (see :data:`DATASETS`) as float64 tensors.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (case and ``_``/``-`` are ignored).
    data_dir : path, optional
        Directory holding ``mnist/``, ``fashion-mnist/``, ``cifar10/``; defaults to
        ``$MARGINLAB_DATA``, then ``~/.cache/marginlab``.
    classes : sequence of int, optional
        Keep only these classes, relabelled ``0..len(classes)-1`` in the order given.
    n_train, n_test : int, optional
        Keep this many examples of each split, after the class filter.
    subset : {"first", "random"}
        Keep the first ``n`` examples, or a random ``n`` drawn with ``seed`` (in original order).
    seed : int
        Seeds random subsets, the digits test split and synthetic draws.
    **params
        Parameters of the data set itself; :func:`dataset_params` lists them.

    Returns
    -------
    Dataset
        Images ``(N, C, H, W)`` scaled to [0, 1], vectors ``(N, d)``; ``info`` records the
        source, parameters and selection.

    Examples
    --------
    >>> ds = load_dataset("digits", classes=[3, 8], n_train=100, subset="random", seed=1)
    >>> ds.x_train.shape, ds.classes
    (torch.Size([100, 1, 8, 8]), ('3', '8'))
    >>> load_dataset("clusters", n=64, d=5).input_shape
    (5,)
    """
    key, loader = _loader(name)
    allowed = dataset_params(key)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for data set {key!r}; "
            f"it accepts: {accepted}"
        )
    if subset not in SUBSET_MODES:
        raise ValueError(f"subset must be one of {', '.join(SUBSET_MODES)}; got {subset!r}")
    seed = as_int("seed", seed, 0)
    context = {"data_dir": data_dir, "seed": seed}
    wanted = inspect.signature(loader).parameters
    splits = loader(**params, **{k: v for k, v in context.items() if k in wanted})

    names = splits.classes
    parts = {"train": (splits.x_train, splits.y_train), "test": (splits.x_test, splits.y_test)}
    if parts["test"][0] is None:
        if n_test is not None:
            raise ValueError(
                f"n_test={n_test} given, but {key!r} has no test split with these parameters "
                "(digits takes test_fraction, synthetic sets take test_n)"
            )
        del parts["test"]
    for split, (_, y) in parts.items():
        if y.size and (y.min() < 0 or y.max() >= len(names)):
            raise ValueError(f"{key} {split} split has labels outside 0..{len(names) - 1}")
    if classes is not None:
        parts = {s: select_classes(x, y, classes, len(names)) for s, (x, y) in parts.items()}
        names = tuple(names[int(c)] for c in classes)
    for split, n in (("train", n_train), ("test", n_test)):
        if n is not None:
            x, y = parts[split]
            parts[split] = take(x, y, n, subset, seeded_rng(seed, f"subset-{split}"), f"n_{split}")

    tensors = {s: (_inputs(x, splits.scale), torch.from_numpy(np.array(y, np.int64)))
               for s, (x, y) in parts.items()}  # fmt: skip
    x_test, y_test = tensors.get("test", (None, None))
    info = {
        **splits.info,
        "params": {**allowed, **params},
        "seed": seed,
        "selection": {
            "classes": None if classes is None else [int(c) for c in classes],
            "n_train": n_train,
            "n_test": n_test,
            "subset": subset,
        },
    }
    return Dataset(key, *tensors["train"], x_test, y_test, len(names), names, info)
