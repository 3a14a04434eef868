"""Overhead of ``marginlab sweep``: 8 small trials on Ray vs the same runs in-process.

Both sides train the same 8 trials (digits classes 3 and 8, MLP hidden [8], a grid over
seeds) with :func:`marginlab.training.engine.train`; the sweep runs them as Ray tasks on a
local instance started by the call (``--max-parallel``, default 2). The overhead is the
sweep's wall time minus the sequential in-process time divided by the parallelism, i.e.
what Ray (start-up, workers, scheduling) adds beyond the trials themselves.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--trials 8] [--epochs 200]``.

Example
-------
>>> seed_grid(3)
'seed=0,1,2'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from marginlab.config import apply_overrides, validate
from marginlab.sweep import grid_overrides, sweep
from marginlab.training.engine import train


def base_config(epochs: int) -> dict:
    """The small trial every grid point shares."""
    return {
        "loss": "cross_entropy",
        "threads": 1,
        "data": {"name": "digits", "classes": [3, 8]},
        "model": {"kind": "mlp", "hidden": [8]},
        "train": {"schedule": "loss_based", "max_epochs": epochs},
        "log": {"every": 10},
    }


def seed_grid(trials: int) -> str:
    """The ``--grid`` entry of ``trials`` seeds."""
    return f"seed={','.join(str(s) for s in range(trials))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--max-parallel", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = base_config(args.epochs)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        for index, assignments in enumerate(grid_overrides([seed_grid(args.trials)])):
            run_config = validate(apply_overrides(config, assignments))
            train(run_config, Path(root) / f"seq{index}", progress=False)
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        summary = sweep(
            config, [seed_grid(args.trials)], Path(root) / "sweep", max_parallel=args.max_parallel
        )
        swept = time.perf_counter() - start
    ideal = sequential / args.max_parallel
    print(f"{args.trials} trials x {args.epochs} epochs, max_parallel={args.max_parallel}")
    print(f"states: {summary['state'].value_counts().to_dict()}")
    print(f"sequential in-process {sequential:7.2f} s   ideal parallel {ideal:7.2f} s")
    print(f"ray sweep             {swept:7.2f} s   overhead {swept - ideal:7.2f} s")


if __name__ == "__main__":
    main()
