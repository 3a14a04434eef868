"""Train K replicas of one small model together (full-batch GD), each in its own run directory.

Replicas share the architecture, loss, dtype, device and schedule kind; they may differ in
seed (so in initialization and, for seeded data sets, in data), in every step-size setting
(``train.lr``, ``train.alpha``, ...) and in their stopping rules. Every replica is an
ordinary run of the engine (:mod:`marginlab.training.engine`): the same step, schedule,
rollbacks, metrics rows, checkpoints and ``status.json``, so each directory can be read,
diagnosed, attacked and resumed like any other run. Only the attempts are computed together:

- on a GPU, every replica's step and ``(log L, grad log L, margins)`` come from one
  ``vmap`` of ``grad_and_value`` over ``functional_call`` on the stacked parameters, so 32
  small runs cost about as much as a few; each replica's model holds views of the stack;
- on a CPU, where that pass is slower per replica than one replica alone (the Chizat &
  Bach step at K = 32: 1.42 ms against 0.83 ms per replica), the replicas take turns, each
  with the engine's own attempt, so every run equals the run trained alone bit for bit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from marginlab.build import resolve_device
from marginlab.config import ConfigError, RunConfig, apply_overrides, validate
from marginlab.training.assembly import assemble
from marginlab.training.engine import start_runs


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


# Settings in which the replicas of one ensemble may differ (besides the seed and logging).
PER_REPLICA_TRAIN = (
    "lr",
    "alpha",
    "alpha_up",
    "alpha_down",
    "min_alpha",
    "loss_ub",
    "max_epochs",
    "target_log10_loss",
)


def _shared_settings(config: RunConfig) -> dict[str, object]:
    """The settings every replica of an ensemble must share, by ``--set`` key."""
    raw = config.to_dict()
    shared = {key: raw[key] for key in ("data", "loss", "dtype", "device", "threads")}
    shared["model"] = {**raw["model"], "seed": None}
    for key, value in raw["train"].items():
        if key not in PER_REPLICA_TRAIN:
            shared[f"train.{key}"] = value
    return shared


def ensemble_key(config: RunConfig) -> str | None:
    """A key equal for configurations that can train as one ensemble; None for one that
    cannot (minibatches).

    Examples
    --------
    >>> from marginlab.experiments.presets import preset
    >>> a, b, c = replica_configs(preset("digits-mlp"), seeds=[0, 1, 2],
    ...     overrides=[[], ["train.alpha=0.5"], ["model.hidden=[8]"]])
    >>> ensemble_key(a) == ensemble_key(b) != ensemble_key(c)
    True
    """
    if config.train.batch_size is not None:
        return None
    return json.dumps(_shared_settings(config), sort_keys=True, default=str)


def _check_compatible(configs: list[RunConfig]) -> None:
    if configs[0].train.batch_size is not None:
        raise ConfigError("train.batch_size: ensembles train full-batch; set it to null")
    first = _shared_settings(configs[0])
    for config in configs[1:]:
        for key, value in _shared_settings(config).items():
            if value != first[key]:
                raise ConfigError(
                    f"{key}: every replica of an ensemble must have the same value (one "
                    f"architecture, data set and schedule); got {first[key]!r} and {value!r}"
                )


def train_ensemble(
    configs: Sequence[RunConfig | dict],
    paths: Sequence[str | os.PathLike],
    *,
    data_dir: str | os.PathLike | None = None,
    batched: bool | None = None,
) -> list[Path]:
    """Train one run per configuration, together; return their run directories.

    Each replica writes what :func:`marginlab.training.engine.train` writes for it (full
    batch, ``train.batch_size: null``): metrics, checkpoints, ``status.json``. A replica
    that stops (epoch limit, target loss, ``min_alpha``, divergence) is ended while the
    others go on; an interrupted ensemble leaves every replica resumable on its own with
    :func:`marginlab.training.engine.resume`.

    Parameters
    ----------
    configs : sequence of RunConfig or dict
        One configuration per replica (see :func:`replica_configs`).
    paths : sequence of path
        One new run directory per replica.
    data_dir : path, optional
        Where real data sets live.
    batched : bool, optional
        Compute the attempts in one vmapped pass (default: on a GPU) rather than in turn.

    Returns
    -------
    list of pathlib.Path
        The run directories.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.runs.run import load_run
    >>> config = {"loss": "exponential", "data": {"name": "xor"},
    ...           "model": {"kind": "two_layer", "width": 8},
    ...           "train": {"max_epochs": 20}, "log": {"every": 10}}
    >>> out = Path(tempfile.mkdtemp())
    >>> paths = train_ensemble(replica_configs(config, seeds=[0, 1, 2]),
    ...                        [out / f"seed={s}" for s in (0, 1, 2)])
    >>> [int(load_run(p).metrics["epoch"].iloc[-1]) for p in paths]
    [20, 20, 20]
    """
    configs = [c if isinstance(c, RunConfig) else validate(c) for c in configs]
    if not configs or len(paths) != len(configs):
        raise ConfigError(f"replicas: {len(configs)} configurations but {len(paths)} paths")
    _check_compatible(configs)
    if batched is None:
        batched = resolve_device(configs[0].device).type != "cpu"
    builds = [lambda config=config: assemble(config, data_dir) for config in configs]
    return start_runs([Path(p) for p in paths], builds, data_dir=data_dir, batched=batched)
