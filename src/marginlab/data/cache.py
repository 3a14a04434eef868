"""A disk cache of decoded arrays, keyed by the source file's size and modification time."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from marginlab.data.paths import cache_dir


def cached_decode(source: Path, tag: str, decode: Callable[[], np.ndarray]) -> np.ndarray:
    """Return ``decode()``, reusing a ``.npy`` copy cached from an earlier call.

    The cache file name holds ``tag`` and the size and ``mtime`` of ``source``, so a
    replaced source is decoded afresh. The copy is written to a temporary file and renamed
    into place, so concurrent loaders never read a partial file. An unwritable cache only
    costs a warning. Treat the result as read-only: a cached one is memory-mapped.

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> os.environ["MARGINLAB_CACHE"] = tempfile.mkdtemp()
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "raw.bin"
    >>> _ = src.write_bytes(b"abc")
    >>> cached_decode(src, "demo", lambda: np.frombuffer(src.read_bytes(), np.uint8)).tolist()
    [97, 98, 99]
    """
    stat = source.stat()
    directory = cache_dir()
    target = directory / f"{tag}-{stat.st_size}-{stat.st_mtime_ns}.npy"
    try:
        return np.load(target, mmap_mode="r")
    except (OSError, ValueError):
        pass
    array = decode()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{tag}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, array)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        warnings.warn(f"could not cache decoded {source} in {directory}: {err}", stacklevel=2)
    return array
