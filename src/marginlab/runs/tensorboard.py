"""Live curves: the scalars of every metrics row written as TensorBoard events."""

from __future__ import annotations

import math
import os
from pathlib import Path


class TensorBoardWriter:
    """Write the numeric entries of metrics rows under ``RUN_DIR/tensorboard``, step = epoch.

    List-valued entries (``layer_norms``, ``support_counts``) become one scalar per item,
    e.g. ``layer_norms/0``; nulls are skipped.

    Examples
    --------
    >>> import tempfile
    >>> writer = TensorBoardWriter(tempfile.mkdtemp())
    >>> writer.write({"epoch": 0, "log10_loss_mean": -1.5, "layer_norms": [1.0, 2.0]})
    >>> writer.close()
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # tensorboard is an optional dependency
            raise ImportError(
                "log.tensorboard: the tensorboard package is not installed; "
                "pip install 'marginlab[tensorboard]'"
            ) from error
        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def write(self, row: dict) -> None:
        step = int(row["epoch"])
        for key, value in row.items():
            if key == "epoch":
                continue
            items = enumerate(value) if isinstance(value, list) else [(None, value)]
            for index, item in items:
                if isinstance(item, bool) or not isinstance(item, (int, float)):
                    continue
                if math.isfinite(item):
                    tag = key if index is None else f"{key}/{index}"
                    self._writer.add_scalar(tag, item, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
