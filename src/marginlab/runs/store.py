"""The run directory: configuration, metrics, checkpoints and status, written atomically.

Layout::

    RUN_DIR/
      config.yaml          the resolved configuration
      metrics.jsonl        one JSON object per logged epoch
      checkpoints.jsonl    one line per kept checkpoint (epoch, loss level, file)
      checkpoints/         safetensors files: latest.safetensors and epoch-NNNNNNN.safetensors
      status.json          running | finished | stopped | interrupted | failed, and why

Every file is replaced atomically (write to a temporary file, then ``os.replace``) or
appended with a single ``write`` of a whole line, so killing the process at any moment
leaves every earlier line and checkpoint intact. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, safe_open, save_file

CHECKPOINT_FORMAT = "marginlab-checkpoint-1"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _clean(value: Any) -> Any:
    """Map non-finite floats to None: JSON has no nan or inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSON-lines file, ignoring a final line cut short by a crash."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


class RunStore:
    """Read and write one run directory.

    Examples
    --------
    >>> import tempfile
    >>> store = RunStore(tempfile.mkdtemp())
    >>> store.append_metrics({"epoch": 0, "log10_loss_mean": -1.5})
    >>> store.metrics()[0]["log10_loss_mean"]
    -1.5
    """

    writable = True

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)

    # configuration and status -------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        _atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict:
        path = self.path / "config.yaml"
        if not path.exists():
            raise FileNotFoundError(f"{self.path}: not a marginlab run directory (no config.yaml)")
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    def write_status(self, state: str, message: str = "", **extra: Any) -> None:
        payload = {"state": state, "message": message, **extra}
        _atomic_write_text(self.path / "status.json", json.dumps(_clean(payload), indent=1))

    def read_status(self) -> dict:
        return self.read_json("status.json")

    def read_json(self, name: str) -> dict:
        """Read a JSON file of the run (``{}`` when it does not exist yet)."""
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def write_json(self, name: str, payload: Any) -> Path:
        """Write an auxiliary result (e.g. a diagnostic table) next to the run."""
        path = self.path / name
        _atomic_write_text(path, json.dumps(_clean(payload), indent=1, default=_json_default))
        return path

    # metrics -----------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        self._append_line("metrics.jsonl", row)

    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / "metrics.jsonl")

    def _append_line(self, name: str, row: dict) -> None:
        line = json.dumps(_clean(row), default=_json_default) + "\n"
        # One write() of a whole line: a kill leaves the line either complete or absent.
        fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def truncate_after(self, epoch: int) -> None:
        """Drop metrics and checkpoint-index lines past ``epoch`` (used on resume)."""
        for name in ("metrics.jsonl", "checkpoints.jsonl"):
            rows = [r for r in read_jsonl(self.path / name) if r["epoch"] <= epoch]
            text = "".join(json.dumps(r) + "\n" for r in rows)
            _atomic_write_text(self.path / name, text)

    # checkpoints -------------------------------------------------------------------------
    def save_checkpoint(
        self, file_name: str, tensors: dict[str, torch.Tensor], state: dict
    ) -> Path:
        path = self.path / "checkpoints" / file_name
        tmp = path.with_name(f".{path.name}.tmp")
        payload = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        metadata = {"format": CHECKPOINT_FORMAT, "state": json.dumps(_clean(state))}
        save_file(payload, str(tmp), metadata=metadata)
        os.replace(tmp, path)
        return path

    def record_checkpoint(self, entry: dict) -> None:
        """Add a kept checkpoint to ``checkpoints.jsonl`` (after its file is in place)."""
        self._append_line("checkpoints.jsonl", entry)

    def checkpoint_index(self) -> list[dict]:
        return read_jsonl(self.path / "checkpoints.jsonl")

    def load_checkpoint(self, file_name: str) -> tuple[dict[str, torch.Tensor], dict]:
        path = self.path / "checkpoints" / file_name
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such checkpoint")
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a marginlab checkpoint")
        return load_file(str(path)), json.loads(metadata["state"])


class ReadOnlyStore(RunStore):
    """A run directory that this process reads but never writes.

    A data-parallel worker other than rank 0 computes exactly what rank 0 writes, so it
    keeps the same code path and drops its writes.
    """

    writable = False

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def write_config(self, config: dict) -> None:
        pass

    def write_status(self, state: str, message: str = "", **extra: Any) -> None:
        pass

    def write_json(self, name: str, payload: Any) -> Path:
        return self.path / name

    def _append_line(self, name: str, row: dict) -> None:
        pass

    def truncate_after(self, epoch: int) -> None:
        pass

    def save_checkpoint(
        self, file_name: str, tensors: dict[str, torch.Tensor], state: dict
    ) -> Path:
        return self.path / "checkpoints" / file_name
