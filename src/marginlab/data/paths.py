"""Where marginlab looks for data files and where it caches decoded arrays."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "MARGINLAB_DATA"
CACHE_ENV = "MARGINLAB_CACHE"


def user_cache_dir() -> Path:
    """Return the per-user marginlab directory, ``$XDG_CACHE_HOME/marginlab`` or ``~/.cache/...``.

    Examples
    --------
    >>> user_cache_dir().name
    'marginlab'
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "marginlab"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data directory: ``data_dir`` if given, else ``$MARGINLAB_DATA``, else the cache.

    The directory holds one folder per data set: ``mnist/``, ``fashion-mnist/``, ``cifar10/``.

    Examples
    --------
    >>> str(resolve_data_dir("/data/sets"))
    '/data/sets'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else user_cache_dir()


def cache_dir() -> Path:
    """Return the directory for decoded arrays: ``$MARGINLAB_CACHE`` or ``<user cache>/decoded``.

    Kept apart from the data directory, which may be read-only or shared.

    Examples
    --------
    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/marginlab/decoded')
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else user_cache_dir() / "decoded"


def missing_data_error(what: str, root: Path, expected: str) -> FileNotFoundError:
    """Build the error for data files absent from ``root``, saying how to point marginlab at them.

    ``expected`` names the files, relative to ``root``.

    Examples
    --------
    >>> err = missing_data_error("MNIST", Path("/d"), "mnist/a.gz")
    >>> "/d" in str(err) and "mnist/a.gz" in str(err) and DATA_ENV in str(err)
    True
    """
    return FileNotFoundError(
        f"{what}: not found in data directory {root}; expected {expected}. Put the files "
        f"there, or point marginlab at the directory that holds them with --data-dir DIR "
        f"or the {DATA_ENV} environment variable."
    )
