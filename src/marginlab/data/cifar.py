"""CIFAR-10 from binary records: the xz-compressed repack or the official batch files.

Both use the official binary record: 1 label byte, then 32x32 R, G and B planes (3073 bytes).
"""

from __future__ import annotations

import lzma
import os
from pathlib import Path

import numpy as np

from marginlab.data.cache import cached_decode
from marginlab.data.dataset import Splits
from marginlab.data.paths import missing_data_error, resolve_data_dir

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
RECORD_BYTES = 1 + 3 * 32 * 32
_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
_XZ_ORDER = "sorted by sha256 of the original file name, not the official batch order"


def _layouts(root: Path, split: str) -> list[list[Path]]:
    """Candidate file lists for one split, in order of preference."""
    official = [
        [base / name for name in _BATCHES[split]]
        for base in (root / "cifar10" / "cifar-10-batches-bin", root / "cifar-10-batches-bin")
    ]
    return [[root / "cifar10" / f"{split}.bin.xz"], *official]


def find_cifar10_files(split: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Return the files holding one split (``"train"`` or ``"test"``) of CIFAR-10.

    Looks for ``cifar10/{split}.bin.xz``, then the official ``cifar-10-batches-bin/``
    folder inside ``cifar10/`` or at the root of the data directory.

    Examples
    --------
    >>> find_cifar10_files("test", "/data")  # doctest: +SKIP
    [PosixPath('/data/cifar10/test.bin.xz')]
    """
    root = resolve_data_dir(data_dir)
    layouts = _layouts(root, split)
    for paths in layouts:
        if all(p.is_file() for p in paths):
            return paths
    expected = " or ".join(", ".join(str(p.relative_to(root)) for p in paths) for paths in layouts)
    raise missing_data_error(f"CIFAR-10 {split} split", root, expected)


def parse_records(buffer: np.ndarray, source: Path) -> np.ndarray:
    """Reshape a flat ``uint8`` buffer into ``(N, 3073)`` records, checking its length.

    Examples
    --------
    >>> parse_records(np.zeros(2 * RECORD_BYTES, np.uint8), Path("x.bin")).shape
    (2, 3073)
    """
    if buffer.size % RECORD_BYTES:
        raise ValueError(
            f"{source}: {buffer.size} bytes is not a whole number of {RECORD_BYTES}-byte records"
        )
    return buffer.reshape(-1, RECORD_BYTES)


def _read_records(path: Path, split: str) -> np.ndarray:
    if path.suffix != ".xz":
        return parse_records(np.fromfile(path, np.uint8), path)

    def decode() -> np.ndarray:
        with lzma.open(path) as f:
            return parse_records(np.frombuffer(f.read(), np.uint8), path)

    # Decompressing the 108 MB training file takes ~9 s; the cached copy loads at once.
    return cached_decode(path, f"cifar10-{split}", decode)


def load_cifar10_split(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Return one split as ``uint8`` images ``(N, 3, 32, 32)``, int64 labels and the files read.

    Examples
    --------
    >>> images, labels, _ = load_cifar10_split("test", "/data")  # doctest: +SKIP
    >>> images.shape, np.bincount(labels).tolist()  # doctest: +SKIP
    ((10000, 3, 32, 32), [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000])
    """
    paths = find_cifar10_files(split, data_dir)
    records = np.concatenate([_read_records(p, split) for p in paths])
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64), paths


def load_cifar10(*, data_dir: str | os.PathLike | None = None) -> Splits:
    """Load both CIFAR-10 splits (see :func:`load_cifar10_split`).

    Examples
    --------
    >>> load_cifar10(data_dir="/data").x_train.shape  # doctest: +SKIP
    (50000, 3, 32, 32)
    """
    x_train, y_train, train_files = load_cifar10_split("train", data_dir)
    x_test, y_test, test_files = load_cifar10_split("test", data_dir)
    files = train_files + test_files
    info = {"files": [str(p) for p in files]}
    if any(p.suffix == ".xz" for p in files):
        info["record_order"] = _XZ_ORDER
    return Splits(x_train, y_train, x_test, y_test, CIFAR10_CLASSES, info, scale=255.0)
