"""Integrity checks of the data files against their published digests."""

from __future__ import annotations

import hashlib
import os

from marginlab.data.paths import missing_data_error, resolve_data_dir

# Official MD5s of the MNIST and Fashion-MNIST releases (the ones torchvision checks) and the
# SHA-256s of the CIFAR-10 xz repack recorded in the data's PROVENANCE.md.
CHECKSUMS: dict[str, dict[str, tuple[str, str]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    "cifar10": {
        "train.bin.xz": (
            "sha256",
            "024bfa82234d36531d9dc901913c2e3877fb1cd31e79a9aa8d8cfa3c84ab05b2",
        ),
        "test.bin.xz": (
            "sha256",
            "cf2973b073bad057bb0da09db351cb2035d4f75db727ee7fa6c3f66813b6f8ca",
        ),
    },
}


def verify_checksums(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, bool]:
    """Hash a data set's files and report, per file name, whether the digest matches.

    Covers the gzipped MNIST / Fashion-MNIST files and the CIFAR-10 xz files. Raises
    ``FileNotFoundError`` for missing files and ``ValueError`` for other data sets.

    Examples
    --------
    >>> verify_checksums("mnist", "/data")  # doctest: +SKIP
    {'train-images-idx3-ubyte.gz': True, ...}
    """
    if name not in CHECKSUMS:
        raise ValueError(f"no checksums known for {name!r}; known: {', '.join(CHECKSUMS)}")
    root = resolve_data_dir(data_dir)
    files = CHECKSUMS[name]
    missing = [f for f in files if not (root / name / f).is_file()]
    if missing:
        raise missing_data_error(name, root, ", ".join(f"{name}/{f}" for f in missing))
    result = {}
    for filename, (algorithm, digest) in files.items():
        h = hashlib.new(algorithm)
        with open(root / name / filename, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        result[filename] = h.hexdigest() == digest
    return result
