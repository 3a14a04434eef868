"""Build the pieces of a training run (data, model, loss, schedule, device) from a config.

The data, network and device come from :mod:`marginlab.build`, which
:func:`marginlab.load_run` shares, so a finished run rebuilds exactly what it trained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from marginlab.build import build_data, build_network, resolve_device
from marginlab.config import ConfigError, RunConfig, TrainConfig
from marginlab.data import Dataset
from marginlab.losses import Loss, get_loss
from marginlab.measure.observers import OBSERVERS
from marginlab.training.schedules import Constant, LossBased, Normalized, Schedule


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
