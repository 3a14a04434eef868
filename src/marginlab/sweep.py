"""Run a grid of ``--set`` overrides as Ray tasks, one normal run directory per trial.

Each trial is ``DIR/<key=value,...>``, trained by :func:`marginlab.training.engine.train`
with ``threads=1``. A trial whose ``status.json`` says ``finished`` is skipped, one that was
interrupted is resumed, and one that fails is reported in the summary while the others go
on. The summary (one row per trial: its state, error and final metrics row) is returned
and written to ``DIR/summary.csv``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from marginlab.config import ConfigError


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


def _final_row(path: Path) -> dict:
    from marginlab.runs.run import load_run

    metrics = load_run(path).metrics
    return metrics.iloc[-1].to_dict() if len(metrics) else {}


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
            return {"state": "skipped", "error": "", **_final_row(store.path)}
        if (store.path / "config.yaml").exists():
            resume(path, data_dir=data_dir, progress=False)
        else:
            train(validate(config), path, data_dir=data_dir, progress=False)
        state = store.read_status()["state"]
        return {"state": state, "error": "", **_final_row(store.path)}
    except Exception as error:  # a failed trial is reported, never stops the sweep
        return {"state": "failed", "error": f"{type(error).__name__}: {error}"}


def sweep(
    config: dict,
    grid: Sequence[str],
    out: str | os.PathLike,
    *,
    address: str | None = None,
    max_parallel: int | None = None,
    data_dir: str | None = None,
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
        Most trials in flight at once, and the local instance's CPUs (default: all cores).
    data_dir : str, optional
        Where real data sets live.

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``trial``, ``state`` (finished, skipped, failed, ...), ``error``
        and the trial's final metrics row.

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
    max_parallel = max_parallel or os.cpu_count() or 1
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max_parallel, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(run_trial)
    names = [",".join(assignments).replace(os.sep, "_") for assignments in trials]
    pending = {}
    rows: dict[str, dict] = {}
    try:
        for name, assignments in zip(names, trials, strict=True):
            # Ray's own limit is the cluster's CPUs; this keeps a shared cluster's share small.
            while len(pending) >= max_parallel:
                _collect(ray, pending, rows, wait_for=1)
            trial_config = apply_overrides(config, [*assignments, "threads=1"])
            pending[task.remote(trial_config, str(out / name), data_dir)] = name
        _collect(ray, pending, rows, wait_for=len(pending))
    finally:
        if started_here:
            ray.shutdown()
    summary = pd.DataFrame([{"trial": name, **rows[name]} for name in names])
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv", index=False)
    return summary


def _collect(ray, pending: dict, rows: dict[str, dict], wait_for: int) -> None:
    """Move ``wait_for`` finished tasks from ``pending`` into ``rows``."""
    if not pending:
        return
    done, _ = ray.wait(list(pending), num_returns=wait_for)
    for ref in done:
        name = pending.pop(ref)
        try:
            rows[name] = ray.get(ref)
        except Exception as error:  # the worker itself died (killed, out of memory)
            rows[name] = {"state": "failed", "error": f"{type(error).__name__}: {error}"}
