"""Data-parallel full-batch gradient descent across processes started by ``torchrun``.

``torchrun --nproc-per-node N -m marginlab run CONFIG`` starts N processes; each holds a
contiguous shard of the training (and test) set. The loss stays in log space across ranks:

    log L = logsumexp_r (log L_r),   grad log L = sum_r exp(log L_r - log L) grad log L_r

so every rank takes the same step as one process over the whole set would. Evaluations
gather the per-sample log losses and margins (two vectors of length N), after which every
rank computes the same metrics; only rank 0 writes the run directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from marginlab.config import ConfigError, RunConfig
from marginlab.data import Dataset
from marginlab.losses import Loss
from marginlab.measure.gradient import log_loss_and_grad
from marginlab.measure.margins import Evaluation, evaluate


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run.

    Attributes
    ----------
    rank, world_size : int
        As ``torch.distributed`` numbers them.
    device : torch.device
        Where this rank computes.
    """

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def from_environment(cls, device: torch.device) -> DataParallel | None:
        """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), else None.

        The backend is NCCL on CUDA and gloo on CPU. Joining waits for every rank.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return None
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def shard(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of ``tensor`` (along the first axis)."""
        return torch.tensor_split(tensor, self.world_size)[self.rank].contiguous()

    def shard_dataset(self, data: Dataset) -> Dataset:
        """The data set with only this rank's shard of each split."""
        if data.n_train < self.world_size:
            raise ConfigError(
                f"torchrun: {self.world_size} processes but only {data.n_train} training "
                "samples; use at most one process per sample"
            )
        splits = {"x_train": data.x_train, "y_train": data.y_train}
        if data.x_test is not None:
            splits |= {"x_test": data.x_test, "y_test": data.y_test}
        return dataclasses.replace(data, **{k: self.shard(v) for k, v in splits.items()})

    def describe(self, data: Dataset) -> dict:
        """World size and the training samples each rank holds (for ``environment.json``)."""
        held = self._gather(torch.tensor([data.n_train], device=data.x_train.device))
        return {"world_size": self.world_size, "train_shards": held.tolist()}

    def _gather(self, local: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's rows in rank order (shards differ in length by <= 1)."""
        size = torch.tensor([len(local)], device=local.device)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        longest = int(max(s.item() for s in sizes))
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[: len(local)] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])

    def evaluate(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss, chunk_size: int
    ) -> Evaluation:
        """:func:`~marginlab.measure.margins.evaluate` over the whole split, from the shards."""
        local = evaluate(model, x, y, loss, chunk_size)
        both = self._gather(torch.stack([local.log_losses, local.margins], dim=1))
        return Evaluation(both[:, 0].contiguous(), both[:, 1].contiguous())

    def log_loss_and_grad(
        self,
        model: nn.Module,
        params: list[torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        loss: Loss,
        chunk_size: int,
    ) -> tuple[float, list[torch.Tensor]]:
        """``log L`` (mean over every shard) and ``grad log L``, the same on every rank."""
        log_mean, grads = log_loss_and_grad(model, params, x, y, loss, chunk_size)
        # (log of this shard's summed loss, its size) from every rank
        local = torch.tensor([log_mean + math.log(len(x)), float(len(x))], dtype=torch.float64)
        local = local.to(self.device)
        every = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(every, local)
        table = torch.stack(every)
        log_total = float(torch.logsumexp(table[:, 0], dim=0))
        weight = math.exp(float(local[0]) - log_total)
        flat = torch.cat([g.reshape(-1) for g in grads]) * weight
        dist.all_reduce(flat)
        merged = [
            piece.view_as(g)
            for piece, g in zip(flat.split([g.numel() for g in grads]), grads, strict=True)
        ]
        return log_total - math.log(float(table[:, 1].sum())), merged


def check_data_parallel(config: RunConfig) -> None:
    """Refuse what a data-parallel run does not support, naming the field to change.

    Examples
    --------
    >>> from marginlab.config import validate
    >>> model = {"kind": "linear"}
    >>> check_data_parallel(validate({"model": model, "train": {"batch_size": None}}))
    >>> try:
    ...     check_data_parallel(validate({"model": model, "train": {"batch_size": 10}}))
    ... except ConfigError as error:
    ...     print(str(error).split(":")[0])
    train.batch_size
    """
    if config.train.batch_size is not None:
        raise ConfigError(
            "train.batch_size: data-parallel runs (torchrun) take full-batch gradient steps; "
            "set train.batch_size: null"
        )
    if config.log.observers:
        raise ConfigError(
            "log.observers: observers need the whole training set in one process; run them "
            "afterwards with `marginlab kkt RUN_DIR`, or train without torchrun"
        )
