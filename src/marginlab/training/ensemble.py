"""Train K replicas of one small model in one batched program (full-batch GD).

Replicas share the architecture, loss, dtype and schedule kind; they may differ in seed (so
in initialization and, for seeded data sets, in data) and in every step-size setting
(``train.lr``, ``train.alpha``, ``alpha_up``, ``alpha_down``, ``min_alpha``, ``loss_ub``)
and stopping rule (``max_epochs``, ``target_log10_loss``). The parameters are stacked with
``torch.func.stack_module_state``. On a GPU one ``vmap`` of ``grad_and_value`` over
``functional_call`` gives every replica's ``log L`` and ``grad log L`` in one pass, so 32
small runs cost about as much as a few; on a CPU, where that pass is slower per replica than
one replica alone, the replicas take turns within each step.

Each replica follows exactly the engine's full-batch update (:mod:`marginlab.training.engine`):
``theta -= exp(log_factor) * grad log L`` with the schedule's ``log_factor`` in log space, and
for the loss-based schedule an attempt is accepted or rolled back per replica
(``torch.where``); a replica that stops (epoch limit, target loss, ``min_alpha``,
divergence) is frozen while the others go on.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from marginlab.assemble import assemble
from marginlab.config import ConfigError, RunConfig, apply_overrides, validate
from marginlab.measure.margins import pairwise_margins
from marginlab.numerics import LN10

Params = dict[str, torch.Tensor]


@dataclass
class EnsembleResult:
    """What :func:`train_ensemble` returns.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per logged epoch per replica: ``replica``, ``seed``, ``epoch``, ``attempts``,
        ``log10_loss_mean``, ``train_acc``, ``q_min``, ``param_norm``, ``normalized_margin``
        (``q_min / rho^L``), ``alpha``, ``rollbacks``, ``wall_time``.
    params : dict of str to torch.Tensor
        Final trainable parameters, stacked along a leading replica axis.
    configs : list of RunConfig
        The configuration of each replica.
    reasons : list of str
        Why each replica stopped.
    """

    metrics: pd.DataFrame
    params: Params
    configs: list[RunConfig]
    reasons: list[str]

    @property
    def final(self) -> pd.DataFrame:
        """The last metrics row of each replica, with its stopping reason."""
        last = self.metrics.groupby("replica").tail(1).set_index("replica")
        return last.assign(reason=self.reasons)


def replica_configs(
    config: RunConfig | dict,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[Sequence[str]] | None = None,
) -> list[RunConfig]:
    """Return one validated configuration per replica.

    Parameters
    ----------
    config : RunConfig or dict
        The shared configuration.
    seeds : sequence of int, optional
        One replica per seed (sets ``seed``).
    overrides : sequence of lists of ``key=value``, optional
        Per-replica ``--set`` assignments, e.g. ``[["train.alpha=0.1"], ["train.alpha=1"]]``.
        With ``seeds`` as well, both must have the same length.

    Examples
    --------
    >>> from marginlab.experiments.presets import preset
    >>> [c.seed for c in replica_configs(preset("digits-mlp"), seeds=[3, 4])]
    [3, 4]
    """
    raw = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    if seeds is None and overrides is None:
        raise ConfigError("replicas: give seeds, overrides or both")
    count = len(seeds) if seeds is not None else len(overrides)  # type: ignore[arg-type]
    if seeds is not None and overrides is not None and len(overrides) != count:
        raise ConfigError(f"replicas: {count} seeds but {len(overrides)} override lists")
    configs = []
    for index in range(count):
        assignments = list(overrides[index]) if overrides is not None else []
        if seeds is not None:
            assignments.append(f"seed={int(seeds[index])}")
        configs.append(validate(apply_overrides(raw, assignments)))
    return configs


def _check_compatible(configs: list[RunConfig]) -> None:
    first = configs[0]
    for config in configs:
        if config.train.batch_size is not None:
            raise ConfigError("train.batch_size: ensembles train full-batch; set it to null")
        shared = {
            "loss": (config.loss, first.loss),
            "dtype": (config.dtype, first.dtype),
            "device": (config.device, first.device),
            "train.schedule": (config.train.schedule, first.train.schedule),
        }
        for key, (value, expected) in shared.items():
            if value != expected:
                raise ConfigError(f"{key}: every replica must use the same value")
        if {**config.model, "seed": 0} != {**first.model, "seed": 0}:
            raise ConfigError("model: every replica must have the same architecture")


def _train_tensor(configs: list[RunConfig], name: str, device: torch.device) -> torch.Tensor:
    """A per-replica ``train.<name>`` setting as a float64 vector (``None`` as ``-inf``)."""
    values = [getattr(c.train, name) for c in configs]
    return torch.tensor([-math.inf if v is None else v for v in values], device=device)


def _per_replica(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a ``(K,)`` vector to broadcast against a stacked ``(K, ...)`` tensor."""
    return vector.view(-1, *([1] * (like.dim() - 1)))


def _select(mask: torch.Tensor, new: Params, old: Params) -> Params:
    return {name: torch.where(_per_replica(mask, old[name]), new[name], old[name]) for name in old}


class _Replicas:
    """The stacked model: parameters, data, and the vmapped ``(grad log L, log L, q)``."""

    def __init__(self, configs: list[RunConfig], data_dir: str | None) -> None:
        parts = [assemble(config, data_dir) for config in configs]
        models = [p.model for p in parts]
        self.loss = parts[0].loss
        self.device = parts[0].device
        self.order = getattr(models[0], "homogeneity_order", None)
        shapes = {tuple(p.data.x_train.shape) for p in parts}
        if len(shapes) != 1:
            raise ConfigError(f"data: every replica needs the same training shape, got {shapes}")
        self.x = torch.stack([p.data.x_train for p in parts])
        self.y = torch.stack([p.data.y_train for p in parts])
        trainable = {n for n, p in models[0].named_parameters() if p.requires_grad}
        stacked, buffers = stack_module_state(models)
        self.params = {n: t.detach() for n, t in stacked.items() if n in trainable}
        self.frozen = {n: t.detach() for n, t in stacked.items() if n not in trainable}
        self.frozen.update(buffers)
        # The norm rho runs over the model's layer groups, as margin_metrics measures it.
        groups = getattr(models[0], "layer_groups", None)
        in_norm = {id(p) for g in groups() for p in g.params} if groups else None
        self.norm_names = [
            n
            for n, p in models[0].named_parameters()
            if n in trainable and (in_norm is None or id(p) in in_norm)
        ]
        template = copy.deepcopy(models[0]).to("meta")
        self._step = vmap(grad_and_value(self._log_loss, has_aux=True))
        self._template = template

    def _log_loss(
        self, params: Params, frozen: Params, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        outputs = functional_call(self._template, {**params, **frozen}, (x,))
        margins = pairwise_margins(outputs, y)
        log_loss = torch.logsumexp(self.loss.log_per_sample(margins), dim=0) - math.log(len(x))
        return log_loss, margins.min(dim=1).values.detach()

    def evaluate(self, params: Params) -> tuple[Params, torch.Tensor, torch.Tensor]:
        """Return ``grad log L`` (stacked), ``log L`` ``(K,)`` and sample margins ``(K, N)``."""
        if self.device.type == "cpu":
            return self._evaluate_each(params)
        grads, (log_loss, margins) = self._step(params, self.frozen, self.x, self.y)
        return grads, log_loss.detach(), margins

    def _evaluate_each(self, params: Params) -> tuple[Params, torch.Tensor, torch.Tensor]:
        # On a CPU the stacked pass is slower per replica than one replica at a time (the
        # Chizat & Bach step at K = 32: 1.42 ms against 0.83 ms per replica), so there the
        # replicas take turns, with plain autograd.
        names = list(params)
        per_replica = []
        for k in range(len(self.x)):
            own = {n: params[n][k].detach().requires_grad_() for n in names}
            frozen = {n: t[k] for n, t in self.frozen.items()}
            log_loss, margins = self._log_loss(own, frozen, self.x[k], self.y[k])
            grads = torch.autograd.grad(log_loss, [own[n] for n in names])
            per_replica.append((grads, log_loss.detach(), margins))
        grads = {n: torch.stack([g[i] for g, _, _ in per_replica]) for i, n in enumerate(names)}
        log_loss = torch.stack([value for _, value, _ in per_replica])
        return grads, log_loss, torch.stack([m for _, _, m in per_replica])

    def norm(self, params: Params) -> torch.Tensor:
        squares = [params[n].double().flatten(1).pow(2).sum(1) for n in self.norm_names]
        return torch.stack(squares).sum(0).sqrt()


def _metrics_rows(
    replicas: _Replicas,
    params: Params,
    log_loss: torch.Tensor,
    margins: torch.Tensor,
    fields: dict[str, torch.Tensor],
    which: torch.Tensor,
) -> list[dict]:
    q_min = margins.min(dim=1).values.double()
    rho = replicas.norm(params)
    normalized = (
        q_min * torch.exp(-replicas.order * torch.log(rho))
        if replicas.order is not None
        else torch.full_like(q_min, math.nan)
    )
    columns = {
        **fields,
        "log10_loss_mean": log_loss.double() / LN10,
        "train_acc": (margins > 0).double().mean(dim=1),
        "q_min": q_min,
        "param_norm": rho,
        "normalized_margin": normalized,
    }
    index = which.nonzero().flatten().tolist()
    values = {key: column[index].tolist() for key, column in columns.items()}
    return [{key: values[key][i] for key in columns} | {"replica": k} for i, k in enumerate(index)]


def train_ensemble(
    config: RunConfig | dict,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[Sequence[str]] | None = None,
    *,
    data_dir: str | None = None,
) -> EnsembleResult:
    """Train one replica per seed (or per override list) in one batched program.

    Every replica does what :func:`marginlab.training.engine.train` does with full batch
    (``train.batch_size: null``): the same step, schedule, rollbacks and stopping rules.
    Metrics are logged every ``log.every`` accepted epochs and at each replica's end; no
    run directory, checkpoint or observer is written.

    Parameters
    ----------
    config : RunConfig or dict
        The shared configuration.
    seeds, overrides
        The replicas, as in :func:`replica_configs`.
    data_dir : str, optional
        Where real data sets live.

    Returns
    -------
    EnsembleResult
        Per-replica metrics (a DataFrame), final stacked parameters and stopping reasons.

    Examples
    --------
    >>> config = {"loss": "exponential", "data": {"name": "xor"},
    ...           "model": {"kind": "two_layer", "width": 8},
    ...           "train": {"max_epochs": 20}, "log": {"every": 10}}
    >>> result = train_ensemble(config, seeds=[0, 1, 2])
    >>> result.final["epoch"].tolist()
    [20, 20, 20]
    """
    configs = replica_configs(config, seeds, overrides)
    _check_compatible(configs)
    replicas = _Replicas(configs, data_dir)
    device, schedule = replicas.device, configs[0].train.schedule
    loss_based = schedule == "loss_based"
    setting = {
        name: _train_tensor(configs, name, device)
        for name in ("lr", "alpha", "alpha_up", "alpha_down", "min_alpha", "loss_ub")
    }
    max_epochs = torch.tensor([c.train.max_epochs for c in configs], device=device)
    target = _train_tensor(configs, "target_log10_loss", device) * LN10
    every = torch.tensor([c.log.every for c in configs], device=device)
    count = len(configs)

    params = replicas.params
    grads, log_loss, margins = replicas.evaluate(params)
    alpha = setting["lr"] if schedule == "constant" else setting["alpha"].clone()
    log_frame = log_loss.clone()
    epochs = torch.zeros(count, dtype=torch.long, device=device)
    attempts, rollbacks = torch.zeros_like(epochs), torch.zeros_like(epochs)
    active = torch.ones(count, dtype=torch.bool, device=device)
    reasons = [""] * count
    rows: list[dict] = []
    logged = torch.zeros_like(epochs)
    started = time.perf_counter()

    def log(which: torch.Tensor) -> None:
        fields = {
            "seed": torch.tensor([c.seed for c in configs]),
            "epoch": epochs,
            "attempts": attempts,
            "alpha": alpha,
            "rollbacks": rollbacks,
            "wall_time": torch.full((count,), time.perf_counter() - started),
        }
        rows.extend(_metrics_rows(replicas, params, log_loss, margins, fields, which))
        logged.copy_(torch.where(which, epochs, logged))

    def stop(mask: torch.Tensor, why: str) -> None:
        for k in (mask & active).nonzero().flatten().tolist():
            reasons[k] = why
        active.logical_and_(~mask)

    log(active)
    while True:
        stop(log_loss < target, "training loss is below train.target_log10_loss")
        stop(epochs >= max_epochs, "reached train.max_epochs")
        if not active.any():
            break
        # log(eta * L): the factor in front of grad log L (marginlab.training.schedules).
        if schedule == "constant":
            log_factor = torch.log(alpha) + log_loss
        elif schedule == "normalized":
            log_factor = torch.log(alpha).expand(count)
        else:
            relative = log_loss - log_frame
            log_factor = torch.where(
                relative > torch.log(setting["loss_ub"]), math.nan, torch.log(alpha) + relative
            )
        completed = active & torch.isfinite(log_factor)
        scale = torch.where(completed, torch.exp(log_factor), 0.0)
        candidate = {
            n: p - _per_replica(scale.to(p.dtype), p) * grads[n] for n, p in params.items()
        }
        new_grads, new_log_loss, new_margins = replicas.evaluate(candidate)
        finite = completed & torch.isfinite(new_log_loss)
        accepted = finite & (new_log_loss <= log_frame) if loss_based else finite
        attempts += active
        if loss_based:
            rejected = active & ~accepted
            alpha = torch.where(
                accepted,
                alpha * setting["alpha_up"],
                torch.where(rejected, alpha / setting["alpha_down"], alpha),
            )
            rollbacks += rejected
            stop(rejected & (alpha < setting["min_alpha"]), "alpha fell below train.min_alpha")
        else:
            stop(active & ~finite, f"diverged under the {schedule} schedule (nan or inf)")
        params = _select(accepted, candidate, params)
        grads = _select(accepted, new_grads, grads)
        log_loss = torch.where(accepted, new_log_loss, log_loss)
        log_frame = torch.where(accepted, new_log_loss, log_frame)
        margins = torch.where(accepted[:, None], new_margins, margins)
        epochs += accepted
        due = accepted & (epochs % every == 0)
        if due.any():
            log(due)
    # Every replica's last accepted epoch is in the table, as the engine's final row.
    log(epochs != logged)
    metrics = pd.DataFrame(rows).sort_values(["replica", "attempts"], kind="stable")
    return EnsembleResult(metrics.reset_index(drop=True), params, configs, reasons)


def unstack(result: EnsembleResult, replica: int, model: nn.Module) -> nn.Module:
    """Load replica ``replica``'s final parameters into ``model`` (built from its config).

    Examples
    --------
    >>> from marginlab.assemble import assemble
    >>> config = {"loss": "exponential", "data": {"name": "xor"},
    ...           "model": {"kind": "two_layer", "width": 4}, "train": {"max_epochs": 3}}
    >>> result = train_ensemble(config, seeds=[0, 1])
    >>> model = unstack(result, 1, assemble(result.configs[1]).model)
    >>> bool((model.output.weight == result.params["body.output.weight"][1]).all())
    True
    """
    state = {name: tensor[replica] for name, tensor in result.params.items()}
    model.load_state_dict(state, strict=False)
    return model
