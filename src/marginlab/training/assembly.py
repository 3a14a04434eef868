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
from marginlab.training.schedules import Constant, InverseSqrt, LossBased, Normalized, Schedule


def build_schedule(train: TrainConfig) -> Schedule:
    """Return the schedule object named by ``train.schedule``."""
    if train.schedule == "constant":
        return Constant(lr=train.lr)
    if train.schedule == "normalized":
        return Normalized(alpha=train.alpha)
    if train.schedule == "inverse_sqrt":
        return InverseSqrt(lr=train.lr)
    if train.schedule == "custom":
        raise ConfigError(
            "train.schedule: the run trained with a schedule object of your own, which a run "
            "directory cannot rebuild; give it again: marginlab.resume(path, schedule=...)"
        )
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


def assemble(
    config: RunConfig,
    data_dir: str | os.PathLike | None = None,
    *,
    base: str | os.PathLike | None = None,
    model: nn.Module | None = None,
    schedule: Schedule | None = None,
) -> Assembly:
    """Build data, model, loss and schedule, and check them against each other.

    ``base`` is the run directory a relative ``data.path`` is read from; ``model`` and
    ``schedule`` stand in for the ones a run of :func:`marginlab.fit` could not record (a
    module marginlab cannot rebuild, a schedule object of your own).
    """
    for index, observer in enumerate(config.log.observers):
        if observer.name not in OBSERVERS:
            raise ConfigError(
                f"log.observers[{index}].name: unknown observer {observer.name!r}; "
                f"expected one of {sorted(OBSERVERS)}"
            )
    device = resolve_device(config.device)
    data = build_data(config, data_dir, device=str(device), base=base)
    batch = config.train.batch_size
    if batch is not None and batch > data.n_train:
        raise ConfigError(
            f"train.batch_size: {batch} is larger than the training set ({data.n_train} "
            f"samples); use at most {data.n_train}, or null for full-batch gradient descent"
        )
    network = build_network(config, data, device=str(device), template=model)
    return Assembly(
        config,
        device,
        data,
        network,
        get_loss(config.loss),
        schedule or build_schedule(config.train),
    )


# Below this many floating-point operations per step, one thread is faster: OpenMP workers
# on small kernels mostly wait, and on a shared machine they wait for each other.
ONE_THREAD_FLOPS = 1e8


def session_threads(parts: Assembly) -> int:
    """The CPU threads a run trains with: ``threads`` when the config sets it, else one for
    small steps and torch's default for large ones (``threads: null``, auto).

    A step costs about three forward passes of a batch (forward, backward through weights
    and inputs); one sample's forward pass is counted by :func:`forward_flops`.
    """
    if parts.config.threads is not None:
        return parts.config.threads
    if parts.device.type != "cpu":
        return torch.get_num_threads()
    flops = forward_flops(parts.model, parts.data.x_train[:1])
    batch = parts.config.train.batch_size or parts.data.n_train
    return 1 if 3 * flops * batch < ONE_THREAD_FLOPS else torch.get_num_threads()


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds (times 2) of the weighted layers in one forward pass of ``x``.

    Each module with a ``weight`` costs ``2 * weight.numel()`` per output position (an
    output element divided by the weight's output channels): exact for ``Linear`` and
    ``Conv``, and far cheaper to get than torch's FLOP counter, which takes seconds to load.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.Flatten(), nn.Linear(144, 2))
    >>> forward_flops(net, torch.zeros(1, 1, 8, 8)) == 2 * (36 * 36 + 288)
    True
    """
    total = 0

    def count(module: nn.Module, _: object, output: object) -> None:
        nonlocal total
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and isinstance(output, torch.Tensor):
            total += 2 * weight.numel() * output.numel() // max(1, weight.shape[0])

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return total
