"""A finished (or running) run, opened from its directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from marginlab.build import build_data, build_network
from marginlab.config import validate
from marginlab.data import Dataset
from marginlab.runs.checkpoint_spec import CheckpointSpec, parse_checkpoint
from marginlab.runs.store import RunStore

LATEST = "latest.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A kept checkpoint: its epoch, its training loss (log10, mean) and its file."""

    epoch: int
    log10_loss_mean: float | None
    path: Path
    reason: str


class Run:
    """A run directory: configuration, metrics, checkpoints, and the model and data.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab import train
    >>> from marginlab.experiments.presets import preset
    >>> config = preset("digits-mlp")
    >>> config["train"]["max_epochs"] = 2
    >>> run = load_run(train(config, tempfile.mkdtemp() + "/r", progress=False))
    >>> int(run.metrics["epoch"].iloc[-1])
    2
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.store = RunStore(path)
        self.path = self.store.path
        self.config: dict = self.store.read_config()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per logged epoch (``metrics.jsonl``)."""
        return pd.DataFrame(self.store.metrics())

    @property
    def status(self) -> dict:
        return self.store.read_status()

    @property
    def environment(self) -> dict:
        return self.store.read_json("environment.json")

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """Kept checkpoints by epoch, ending with ``last`` (the latest state)."""
        kept = [
            Checkpoint(
                e["epoch"], e["log10_loss_mean"], self.path / "checkpoints" / e["file"], e["reason"]
            )
            for e in self.store.checkpoint_index()
        ]
        latest = self.path / "checkpoints" / LATEST
        if latest.exists():
            _, state = self.store.load_checkpoint(LATEST)
            kept.append(
                Checkpoint(state["epoch"], self._log10_loss_at(state["epoch"]), latest, "last")
            )
        return kept

    def _log10_loss_at(self, epoch: int) -> float | None:
        rows = [r for r in self.store.metrics() if r["epoch"] == epoch]
        return rows[-1]["log10_loss_mean"] if rows else None

    def checkpoint(self, which: str | int | float | CheckpointSpec = "last") -> Checkpoint:
        """Select a checkpoint: ``"last"``, an epoch (int), or a loss level (``1e-20`` or the
        text ``"1e-882"``: the first kept checkpoint whose mean training loss is below it).

        The spec is read by :func:`~marginlab.runs.checkpoint_spec.parse_checkpoint`, as
        every command reads it."""
        spec = parse_checkpoint(which)
        kept = self.checkpoints
        if not kept:
            raise FileNotFoundError(f"{self.path}: the run has no checkpoints")
        if spec.is_last:
            return kept[-1]
        if spec.epoch is not None:
            for checkpoint in kept:
                if checkpoint.epoch == spec.epoch:
                    return checkpoint
            epochs = sorted({c.epoch for c in kept})
            raise KeyError(
                f"checkpoint: no checkpoint at epoch {spec.epoch}; kept epochs: {epochs}"
            )
        for checkpoint in kept:
            if (
                checkpoint.log10_loss_mean is not None
                and checkpoint.log10_loss_mean < spec.log10_level
            ):
                return checkpoint
        raise KeyError(
            f"checkpoint: the training loss never fell below {spec} in kept checkpoints"
        )

    def load_model(
        self,
        checkpoint: str | int | float | CheckpointSpec | Checkpoint = "last",
        device: str = "cpu",
    ) -> nn.Module:
        """Rebuild the network and load a checkpoint's weights (a :class:`Checkpoint` of
        :attr:`checkpoints`, or a spec as for :meth:`checkpoint`)."""
        config = validate(self.config)
        chosen = checkpoint if isinstance(checkpoint, Checkpoint) else self.checkpoint(checkpoint)
        model = build_network(config, self._dataset(device), device=device)
        tensors, _ = self.store.load_checkpoint(chosen.path.name)
        model.load_state_dict(tensors)
        return model.eval()

    def load_data(
        self, split: str = "train", device: str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(X, y)`` of ``split`` exactly as used in training."""
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        dataset = self._dataset(device)
        if split == "test":
            if dataset.x_test is None:
                raise ValueError(f"split: the run's data set {dataset.name!r} has no test split")
            return dataset.x_test, dataset.y_test
        return dataset.x_train, dataset.y_train

    def _dataset(self, device: str) -> Dataset:
        return build_data(validate(self.config), self.environment.get("data_dir"), device=device)


def load_run(path: str | os.PathLike) -> Run:
    """Open a run directory.

    Parameters
    ----------
    path : path
        Directory written by ``marginlab run`` or :func:`marginlab.train`.

    Returns
    -------
    Run
    """
    return Run(path)
