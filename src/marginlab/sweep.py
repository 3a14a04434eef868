"""Run a grid of ``--set`` overrides as Ray tasks, one normal run directory per trial.

Each trial is ``DIR/<key=value,...>``, trained by :func:`marginlab.training.engine.train`
with ``threads=1``. New trials that can share one program (full batch, differing only in
seed, step sizes or stopping rules: :func:`marginlab.training.ensemble.ensemble_key`) train
as one ensemble task on a GPU, where that pays; each still gets its own run directory. A
trial whose ``status.json`` says ``finished`` is skipped, one that was interrupted (or whose
process died) is resumed, and one that fails is reported in the summary while the others go
on. The summary (one row per trial: its state, whether it reached its target, why it ended,
and its final metrics row) is returned and written to
``DIR/summary.csv``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from marginlab.config import ConfigError
from marginlab.progress import Bar


def _split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` on the commas outside brackets, so ``[8,8],[16]`` is two values."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    return [*values, current]


def grid_overrides(grid: Sequence[str]) -> list[list[str]]:
    """Return the cartesian product of ``key=v1,v2,...`` entries as ``--set`` lists.

    Examples
    --------
    >>> grid_overrides(["seed=0,1", "model.hidden=[8],[4,4]"])  # doctest: +NORMALIZE_WHITESPACE
    [['seed=0', 'model.hidden=[8]'], ['seed=0', 'model.hidden=[4,4]'],
     ['seed=1', 'model.hidden=[8]'], ['seed=1', 'model.hidden=[4,4]']]
    """
    axes = []
    for entry in grid:
        key, sep, values = entry.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"--grid {entry!r}: expected key=v1,v2,...")
        axes.append([f"{key}={value}" for value in _split_values(values)])
    return [list(combination) for combination in itertools.product(*axes)]


def trial_row(path: str | os.PathLike) -> dict:
    """A trial's summary row: its state, whether it reached its target, why it ended, and
    its last metrics row.

    ``target_reached`` is False for a trial that stopped at ``train.max_epochs`` above its
    ``train.target_log10_loss`` (and None when it has no target or did not finish);
    ``reason`` is its status message.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.presets import preset
    >>> from marginlab.training.engine import train
    >>> config = {**preset("digits-mlp"), "train": {"max_epochs": 2}}
    >>> row = trial_row(train(config, tempfile.mkdtemp() + "/t", progress=False))
    >>> row["state"], row["epoch"], row["target_reached"]
    ('finished', 2, False)
    >>> row["reason"]
    'short of the target: reached train.max_epochs=2 with the mean training loss at ...'
    """
    from marginlab.runs.run import load_run

    run = load_run(path)
    status, metrics = run.status, run.metrics
    return {
        "state": status.get("state", "unknown"),
        "target_reached": status.get("target_reached"),
        "reason": status.get("message", ""),
        **(metrics.iloc[-1].to_dict() if len(metrics) else {}),
    }


def _failed(error: BaseException) -> dict:
    return {"state": "failed", "reason": f"{type(error).__name__}: {error}"}


def run_trial(config: dict, path: str, data_dir: str | None = None) -> dict:
    """Train (or resume, or skip) one trial; return its summary row, never raising.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.presets import preset
    >>> config = {**preset("digits-mlp"), "train": {"max_epochs": 2}}
    >>> run_trial(config, tempfile.mkdtemp() + "/t")["state"]
    'finished'
    """
    from marginlab.config import validate
    from marginlab.runs.store import RunStore
    from marginlab.training.engine import resume, train

    store = RunStore(path)
    try:
        if (store.path / "status.json").exists() and store.read_status()["state"] == "finished":
            return {**trial_row(store.path), "state": "skipped"}
        if (store.path / "config.yaml").exists():
            resume(path, data_dir=data_dir, progress=False)
        else:
            train(validate(config), path, data_dir=data_dir, progress=False)
        return trial_row(store.path)
    except Exception as error:  # a failed trial is reported, never stops the sweep
        return _failed(error)


def run_ensemble_trials(configs: list, paths: list[str], data_dir: str | None = None) -> list:
    """Train new trials together as one ensemble; return their summary rows, never raising.

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.presets import preset
    >>> config = {**preset("digits-mlp"), "train": {"max_epochs": 2}}
    >>> out = tempfile.mkdtemp()
    >>> rows = run_ensemble_trials([config, {**config, "seed": 1}], [out + "/a", out + "/b"])
    >>> [row["state"] for row in rows]
    ['finished', 'finished']
    """
    from marginlab.training.ensemble import train_ensemble

    try:
        train_ensemble(configs, paths, data_dir=data_dir)
    except Exception as error:  # the group's trials are reported, never stop the sweep
        return [_failed(error)] * len(paths)
    return [trial_row(path) for path in paths]


def _groups(configs: dict[str, dict], out: Path, ensembles: bool) -> list[list[str]]:
    """The tasks of a sweep: lists of trial names, several only for one ensemble."""
    from marginlab.config import validate
    from marginlab.training.ensemble import ensemble_key

    tasks, by_key = [], {}
    for name, config in configs.items():
        key = None
        if ensembles and not (out / name / "config.yaml").exists():
            try:
                key = ensemble_key(validate(config))
            except ConfigError:
                key = None  # reported when its own task validates it
        if key is None:
            tasks.append([name])
        elif key in by_key:
            by_key[key].append(name)
        else:
            by_key[key] = [name]
            tasks.append(by_key[key])
    return tasks


def _task_resources(on_gpu: bool, max_parallel: int) -> dict[str, float]:
    """What each task asks Ray for. Ray hides the GPUs from a task that asks for none, so a
    trial on a GPU asks for a share of one (``max_parallel`` tasks fit on a GPU).

    Examples
    --------
    >>> _task_resources(True, 4), _task_resources(False, 4)
    ({'num_cpus': 1, 'num_gpus': 0.25}, {'num_cpus': 1})
    """
    return {"num_cpus": 1, "num_gpus": 1 / max_parallel} if on_gpu else {"num_cpus": 1}


def _on_gpu(config: dict) -> bool:
    import torch

    device = config.get("device", "auto")
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def sweep(
    config: dict,
    grid: Sequence[str],
    out: str | os.PathLike,
    *,
    address: str | None = None,
    max_parallel: int | None = None,
    data_dir: str | None = None,
    ensembles: bool | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every grid point of ``config`` as a Ray task; return and save the summary.

    Parameters
    ----------
    config : dict
        The shared configuration (e.g. from :func:`marginlab.commands.train.load_spec`).
    grid : sequence of str
        ``key=v1,v2,...`` entries; the trials are their cartesian product.
    out : path
        The sweep directory; trial ``i`` lives in ``out/<key=value,...>``.
    address : str, optional
        An existing Ray cluster; by default a local Ray instance is started.
    max_parallel : int, optional
        Most tasks in flight at once, and the local instance's CPUs (default: all cores).
    data_dir : str, optional
        Where real data sets live.
    ensembles : bool, optional
        Train new trials that can share one program as one ensemble task (default: when
        the trials run on a GPU; on a CPU separate tasks use the cores better).
    progress : bool
        Show a bar over the trials with the remaining time (from the pace of the trials
        done so far).

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``trial``, ``state`` (finished, skipped, failed, ...),
        ``target_reached``, ``reason`` (why it ended), the trial's final metrics row, and
        ``ensemble_size`` (the trials trained with it in one task, itself included).

    Examples
    --------
    >>> import tempfile
    >>> from marginlab.experiments.presets import preset
    >>> config = {**preset("digits-mlp"), "train": {"max_epochs": 2}}
    >>> summary = sweep(config, ["seed=0,1"], tempfile.mkdtemp(), max_parallel=1)
    >>> summary["state"].tolist()
    ['finished', 'finished']
    """
    import ray

    from marginlab.config import apply_overrides

    out = Path(out)
    trials = grid_overrides(grid)
    names = [",".join(assignments).replace(os.sep, "_") for assignments in trials]
    configs = {
        name: apply_overrides(config, [*assignments, "threads=1"])
        for name, assignments in zip(names, trials, strict=True)
    }
    if ensembles is None:
        ensembles = _on_gpu(config)
    max_parallel = max_parallel or os.cpu_count() or 1
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max_parallel, include_dashboard=False, log_to_driver=False)
    resources = _task_resources(_on_gpu(config), max_parallel)
    one = ray.remote(**resources)(run_trial)
    together = ray.remote(**resources)(run_ensemble_trials)
    pending: dict = {}
    rows: dict[str, dict] = {}
    bar = Bar(f"sweep {out.name}", total=len(names), enabled=progress)
    try:
        tasks = _groups(configs, out, ensembles)
        for task in tasks:
            # Ray's own limit is the cluster's CPUs; this keeps a shared cluster's share small.
            while len(pending) >= max_parallel:
                _collect(ray, pending, rows, bar, wait_for=1)
            paths = [str(out / name) for name in task]
            if len(task) == 1:
                ref = one.remote(configs[task[0]], paths[0], data_dir)
            else:
                ref = together.remote([configs[name] for name in task], paths, data_dir)
            pending[ref] = task
        _collect(ray, pending, rows, bar, wait_for=len(pending))
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    size = {name: len(task) for task in tasks for name in task}
    summary = pd.DataFrame(
        [{"trial": name, **rows[name], "ensemble_size": size[name]} for name in names]
    )
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    return summary


def _collect(ray, pending: dict, rows: dict[str, dict], bar: Bar, wait_for: int) -> None:
    """Move ``wait_for`` finished tasks from ``pending`` into ``rows``, one at a time."""
    for _ in range(wait_for if pending else 0):
        done, _ = ray.wait(list(pending), num_returns=1)
        _record(ray, pending, rows, done)
        bar.update(len(rows), "trials")


def _record(ray, pending: dict, rows: dict[str, dict], done: list) -> None:
    for ref in done:
        task = pending.pop(ref)
        try:
            result = ray.get(ref)
            results = result if len(task) > 1 else [result]
        except Exception as error:  # the worker itself died (killed, out of memory)
            results = [_failed(error)] * len(task)
        rows.update(zip(task, results, strict=True))
