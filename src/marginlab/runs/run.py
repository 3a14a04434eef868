"""A finished (or running) run, opened from its directory."""

from __future__ import annotations

import os

import pandas as pd
import torch
from torch import nn

from marginlab.build import build_data, build_network
from marginlab.config import ConfigError, RunConfig, validate
from marginlab.data import Dataset
from marginlab.runs.checkpoint_spec import CheckpointSpec, select_checkpoint
from marginlab.runs.store import Checkpoint, RunDirectoryError, RunStore, load_weights

__all__ = ["Checkpoint", "Run", "load_run"]


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

    def __init__(self, path: str | os.PathLike, model: nn.Module | None = None) -> None:
        self.store = RunStore(path)
        self.path = self.store.path
        self.config: dict = self.store.read_config()
        # A module of the run's shape, for a run of marginlab.fit that trained a module the
        # directory cannot describe; load_model copies it and loads the weights.
        self._template = model
        # The trained module itself, for a run that marginlab.fit just returned.
        self.model: nn.Module | None = None
        # An index that is damaged or leads outside the directory is refused on opening.
        self.store.checkpoint_index()

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
        """Kept checkpoints by epoch, ending with ``last`` (the latest state); read from the
        index, not from the weights."""
        return self.store.kept_checkpoints()

    def checkpoint(self, which: str | int | float | CheckpointSpec = "last") -> Checkpoint:
        """Select a checkpoint: ``"last"``, an epoch (int), or a loss level (``1e-20`` or the
        text ``"1e-882"``: the first kept checkpoint whose mean training loss is below it).

        The spec is read by :func:`~marginlab.runs.checkpoint_spec.parse_checkpoint`, as
        every command reads it."""
        # A damaged latest file stands in the way of "last" only.
        kept = self.store.kept_checkpoints(with_latest=str(which) == "last")
        return select_checkpoint(kept, which, self.path)

    def load_model(
        self,
        checkpoint: str | int | float | CheckpointSpec | Checkpoint = "last",
        device: str = "cpu",
    ) -> nn.Module:
        """Rebuild the network and load a checkpoint's weights (a :class:`Checkpoint` of
        :attr:`checkpoints`, or a spec as for :meth:`checkpoint`)."""
        config = self._config()
        chosen = checkpoint if isinstance(checkpoint, Checkpoint) else self.checkpoint(checkpoint)
        model = build_network(
            config, self._dataset(device), device=device, template=self._template, copies=1
        )
        tensors, _ = self.store.load_checkpoint(chosen.path.name, chosen.sha256)
        load_weights(model, tensors, chosen.path)
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
        return build_data(self._config(), self.store.data_dir(), device=device, base=self.path)

    def _config(self) -> RunConfig:
        try:
            return validate(self.config)
        except ConfigError as error:
            raise RunDirectoryError(f"{self.path / 'config.yaml'}: {error}") from None


def load_run(path: str | os.PathLike, model: nn.Module | None = None) -> Run:
    """Open a run directory.

    Parameters
    ----------
    path : path
        Directory written by ``marginlab run``, :func:`marginlab.train` or
        :func:`marginlab.fit`.
    model : nn.Module, optional
        A module of the run's shape, for a run of :func:`marginlab.fit` that trained a
        module the directory cannot describe (anything but a zoo model or an
        ``nn.Sequential`` of standard layers); it receives the weights of a checkpoint.

    Returns
    -------
    Run
    """
    return Run(path, model)
