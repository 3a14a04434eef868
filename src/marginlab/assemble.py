"""Build the pieces of a run (data, model, loss, schedule, device) from a validated config.

Training and :func:`marginlab.load_run` both go through here, so a finished run rebuilds
exactly the model and data it was trained with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from marginlab.config import ConfigError, RunConfig, TrainConfig
from marginlab.data import Dataset, load_dataset
from marginlab.losses import Loss, get_loss
from marginlab.measure.observers import OBSERVERS
from marginlab.models import build_model
from marginlab.training.schedules import Constant, LossBased, Normalized, Schedule

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to CUDA when present, else CPU; refuse ``cuda`` without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but no CUDA device is available; use cpu")
    return torch.device(name)


def build_data(
    config: RunConfig, data_dir: str | os.PathLike | None = None, device: str = "cpu"
) -> Dataset:
    """Load the run's data set, on ``device`` in the run's dtype."""
    data = config.data
    try:
        dataset = load_dataset(
            data.name,
            data_dir=data_dir,
            classes=data.classes,
            n_train=data.n_train,
            n_test=data.n_test,
            subset=data.subset,
            seed=config.seed,
            **data.params,
        )
    except ValueError as error:
        raise ConfigError(f"data: {error}") from None
    return dataset.to(device=device, dtype=DTYPES[config.dtype])


def build_network(config: RunConfig, dataset: Dataset, device: str = "cpu") -> nn.Module:
    """Build the run's model for ``dataset`` and check that its outputs fit the labels."""
    spec = {"seed": config.seed, **config.model}
    n_outputs = (
        1 if dataset.n_classes == 2 and config.loss != "cross_entropy" else dataset.n_classes
    )
    try:
        model = build_model(spec, input_shape=tuple(dataset.input_shape), n_outputs=n_outputs)
    except (TypeError, ValueError) as error:  # every value here comes from the user's spec
        raise ConfigError(f"model: {error}") from None
    except (MemoryError, RuntimeError) as error:  # torch: too large to allocate
        first = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError(f"model: the network cannot be built ({first})") from None
    model = model.to(device=device, dtype=DTYPES[config.dtype])
    with torch.no_grad():
        width = model(dataset.x_train[:2]).shape[1]
    if width not in (n_outputs, dataset.n_classes) or (width == 1 and dataset.n_classes != 2):
        raise ConfigError(
            f"model: the network has {width} outputs but the data has {dataset.n_classes} "
            f"classes; make the last layer {dataset.n_classes} wide"
            + (" (or 1 for a binary logistic/exponential model)" if dataset.n_classes == 2 else "")
        )
    return model


def build_schedule(train: TrainConfig) -> Schedule:
    """Return the schedule object named by ``train.schedule``."""
    if train.schedule == "constant":
        return Constant(lr=train.lr)
    if train.schedule == "normalized":
        return Normalized(alpha=train.alpha)
    return LossBased(
        alpha=train.alpha,
        up=train.alpha_up,
        down=train.alpha_down,
        min_alpha=train.min_alpha,
        loss_ub=train.loss_ub,
        reject_margin_decrease=train.reject_margin_decrease,
    )


@dataclass
class Assembly:
    """Everything a training run needs, built from one config."""

    config: RunConfig
    device: torch.device
    data: Dataset
    model: nn.Module
    loss: Loss
    schedule: Schedule


def assemble(config: RunConfig, data_dir: str | os.PathLike | None = None) -> Assembly:
    """Build data, model, loss and schedule, and check them against each other."""
    for index, observer in enumerate(config.log.observers):
        if observer.name not in OBSERVERS:
            raise ConfigError(
                f"log.observers[{index}].name: unknown observer {observer.name!r}; "
                f"expected one of {sorted(OBSERVERS)}"
            )
    device = resolve_device(config.device)
    if config.threads is not None:
        # Small models run faster on one thread: OpenMP workers on tiny kernels mostly wait,
        # and on a shared machine they wait for each other.
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    data = build_data(config, data_dir, device=str(device))
    batch = config.train.batch_size
    if batch is not None and batch > data.n_train:
        raise ConfigError(
            f"train.batch_size: {batch} is larger than the training set ({data.n_train} "
            f"samples); use at most {data.n_train}, or null for full-batch gradient descent"
        )
    model = build_network(config, data, device=str(device))
    return Assembly(
        config, device, data, model, get_loss(config.loss), build_schedule(config.train)
    )
