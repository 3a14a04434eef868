"""Your own data from a file: NumPy ``.npz``, safetensors, PyTorch ``.pt`` tensors, or CSV.

Arrays and tensors are named ``x``, ``y`` and optionally ``x_test``, ``y_test``; a CSV file
holds one sample per row with the class in the column named ``label`` (or ``label_column``).
Labels must be class indices ``0 .. C-1``; the number of classes is the largest label plus
one. Nothing is unpickled: ``.pt`` files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from marginlab.data.dataset import Splits

FORMATS = (".npz", ".safetensors", ".pt", ".csv")
KEYS = ("x", "y", "x_test", "y_test")


def load_file(path: str | os.PathLike | None = None, label_column: str = "label") -> Splits:
    """Read a data set from ``path`` (see the module notes for the formats).

    Parameters
    ----------
    path : path
        A ``.npz``, ``.safetensors``, ``.pt`` or ``.csv`` file.
    label_column : str
        CSV only: the column holding the class; a file without it is refused.

    Returns
    -------
    Splits

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/blobs.npz"
    >>> np.savez(path, x=np.random.default_rng(0).normal(size=(6, 2)), y=[0, 1, 0, 1, 0, 1])
    >>> splits = load_file(path)
    >>> splits.x_train.shape, splits.classes
    ((6, 2), ('0', '1'))
    """
    if path is None:
        raise ValueError("path: give the file to read, e.g. data: {name: file, path: data.npz}")
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(
            f"path: {str(path)!r} has suffix {path.suffix!r}; expected one of {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"path: no file {str(path)!r}")
    arrays = _csv(path, label_column) if path.suffix == ".csv" else _arrays(path)
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise ValueError(
            f"path: {path.name} holds {sorted(arrays) or 'nothing'}; it needs arrays named x "
            "and y (and optionally x_test, y_test)"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"path: {path.name} holds only one of x_test and y_test; give both")
    labels = {key: _labels(key, arrays[key]) for key in ("y", "y_test") if key in arrays}
    n_classes = max(int(y.max()) + 1 for y in labels.values() if y.size)
    return Splits(
        _features("x", arrays["x"]),
        labels["y"],
        None if "x_test" not in arrays else _features("x_test", arrays["x_test"]),
        labels.get("y_test"),
        tuple(str(c) for c in range(max(n_classes, 2))),
        {"source": str(path.resolve())},
    )


def _arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError

    if path.suffix == ".npz" and not zipfile.is_zipfile(path):
        raise ValueError(f"path: {path.name} is not a .npz file (a zip archive of arrays)")
    try:
        loaded = _read_arrays(path)
    except (OSError, RuntimeError, ValueError, EOFError, SafetensorError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(
            f"path: {path.name} cannot be read as a {path.suffix} file ({reason[:200]})"
        ) from None
    except pickle.UnpicklingError:
        raise ValueError(
            f"path: {path.name} is not a file of tensors that torch.load reads without "
            "unpickling code; save a dict of tensors, e.g. torch.save({'x': x, 'y': y}, path)"
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError(
            f"path: {path.name} holds a {type(loaded).__name__}; save a dict of tensors, e.g. "
            "torch.save({'x': x, 'y': y}, path)"
        )
    return {k: np.asarray(v) for k, v in loaded.items() if k in KEYS}


def _read_arrays(path: Path) -> object:
    """What the file holds: a mapping of names to arrays or tensors (a ``.pt`` file may
    hold anything that loads without unpickling code)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files if key in KEYS}
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file as load_safetensors

        return {k: v for k, v in load_safetensors(str(path)).items() if k in KEYS}
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _csv(path: Path, label_column: str) -> dict[str, np.ndarray]:
    import pandas as pd

    table = pd.read_csv(path)
    column = label_column
    if column not in table.columns:
        # not the last column by default: a file whose last column is a feature would
        # train on it as labels without a word
        raise ValueError(
            f"path: {path.name} has no column {column!r} (its columns: "
            f"{', '.join(map(str, table.columns))}); name the class column {column!r}, or "
            "set data.params.label_column to the column that holds the class"
        )
    features = table.drop(columns=[column])
    if not all(np.issubdtype(t, np.number) for t in features.dtypes):
        text = [c for c, t in features.dtypes.items() if not np.issubdtype(t, np.number)]
        raise ValueError(f"path: {path.name}: column(s) {text} are not numbers")
    return {"x": features.to_numpy(np.float64), "y": table[column].to_numpy()}


def _features(key: str, values: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{key}: the inputs must be numbers ({error})") from None


def _labels(key: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(
            f"{key}: labels must be one class index per sample; got shape {values.shape}"
        )
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"{key}: labels must be class indices 0, 1, ...; got {values.dtype} values"
        )
    if not np.all(values == np.round(values)) or (values.size and values.min() < 0):
        wrong = values[(values != np.round(values)) | (values < 0)][0].item()
        hint = "; for labels -1/+1 save (y + 1) // 2" if wrong == -1 else ""
        raise ValueError(f"{key}: labels must be class indices 0, 1, ...; got {wrong}{hint}")
    return values.astype(np.int64)


def file_bytes(x, y, x_test=None, y_test=None) -> bytes:
    """Tensors as the bytes of a ``.safetensors`` file that :func:`load_file` reads back.

    Examples
    --------
    >>> import tempfile, torch
    >>> path = Path(tempfile.mkdtemp()) / "data.safetensors"
    >>> _ = path.write_bytes(file_bytes(torch.eye(2), torch.tensor([0, 1])))
    >>> load_file(path).y_train.tolist()
    [0, 1]
    """
    from safetensors.torch import save

    named = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    return save({k: v.detach().cpu().contiguous() for k, v in named.items() if v is not None})
