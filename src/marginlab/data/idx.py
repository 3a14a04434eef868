"""MNIST and Fashion-MNIST from the official IDX files (gzip-compressed or raw)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from marginlab.data.dataset import Splits
from marginlab.data.paths import missing_data_error, resolve_data_dir

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# name -> (display name, class names); the folder inside the data directory is the name.
IDX_DATASETS = {
    "mnist": ("MNIST", MNIST_CLASSES),
    "fashion-mnist": ("Fashion-MNIST", FASHION_MNIST_CLASSES),
}
# split -> (images, labels) file names without the ".gz" the official files carry.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type byte -> element type; multi-byte types are big-endian.
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes) -> np.ndarray:
    """Decode the bytes of one IDX file into an array of the shape its header states.

    Raises ``ValueError`` for a bad magic number or a size that does not match the header.

    Examples
    --------
    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"not an IDX file: magic bytes {data[:4].hex()!r}")
    ndim = data[3]
    dtype = np.dtype(_IDX_TYPES[data[2]])
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"IDX header truncated: {len(data)} bytes for {ndim} dimensions")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"IDX size mismatch: header {shape} needs {expected} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gunzipping it when its name ends in ``.gz``.

    Examples
    --------
    >>> images = read_idx("data/mnist/t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape  # doctest: +SKIP
    (10000, 28, 28)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        try:
            return parse_idx(f.read())
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def find_idx_files(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Return the paths of a data set's four IDX files, keyed by file name without ``.gz``.

    Each file may be gzipped (the official form) or raw. Raises ``FileNotFoundError``
    naming the directory and every missing file.

    Examples
    --------
    >>> sorted(find_idx_files("mnist", "/data"))  # doctest: +SKIP
    ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', ...]
    """
    display, _ = IDX_DATASETS[name]
    root = resolve_data_dir(data_dir)
    folder = root / name
    found, missing = {}, []
    for stem in (stem for pair in IDX_FILES.values() for stem in pair):
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(f"{name}/{stem}.gz")
        else:
            found[stem] = path
    if missing:
        raise missing_data_error(display, root, ", ".join(missing))
    return found


def load_idx(name: str, *, data_dir: str | os.PathLike | None = None) -> Splits:
    """Load MNIST-format train and test splits as ``uint8`` images ``(N, 1, H, W)``.

    Examples
    --------
    >>> splits = load_idx("mnist", data_dir="/data")  # doctest: +SKIP
    >>> splits.x_train.shape, splits.y_train[:5].tolist()  # doctest: +SKIP
    ((60000, 1, 28, 28), [5, 0, 4, 1, 9])
    """
    _, classes = IDX_DATASETS[name]
    files = find_idx_files(name, data_dir)
    arrays = []
    for split, (image_stem, label_stem) in IDX_FILES.items():
        images, labels = read_idx(files[image_stem]), read_idx(files[label_stem])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{name} {split}: images {images.shape} and labels {labels.shape} do not match"
            )
        arrays += [images[:, None], labels.astype(np.int64)]
    return Splits(
        *arrays,
        classes=classes,
        info={"files": [str(p) for p in files.values()]},
        scale=255.0,
    )
