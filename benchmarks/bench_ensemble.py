"""Throughput of 32 seeds of the Chizat & Bach experiment: one ensemble vs 32 runs.

One side trains every seed with :func:`~marginlab.training.ensemble.train_ensemble` (each
replica writes its own run directory; ``--batched`` forces the one-pass vmapped attempt of
GPUs, which on a CPU is slower than the replicas in turn); the other trains them one after
the other with :func:`~marginlab.training.engine.train`. Both use the configuration of
``bench_chizat_bach.py`` (``m = 1000``, ``d = 15``, ``n = 256``, both layers) and include
set-up, since that is what a user of either pays.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py [--seeds 32] [--iters 100]``.

Example
-------
>>> seconds = ensemble_seconds("float32", 2, [0, 1], batched=True)
>>> seconds > 0
True
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_chizat_bach import chizat_bach_config

from marginlab.training.engine import train
from marginlab.training.ensemble import replica_configs, train_ensemble


def ensemble_seconds(dtype: str, iters: int, seeds: list[int], batched: bool) -> float:
    """Wall seconds of one ensemble over ``seeds``."""
    configs = replica_configs(chizat_bach_config(dtype, iters), seeds=seeds)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train_ensemble(configs, [Path(out) / str(s) for s in seeds], batched=batched)
        return time.perf_counter() - start


def sequential_seconds(dtype: str, iters: int, seeds: list[int]) -> float:
    """Wall seconds of one run per seed, one after the other."""
    configs = replica_configs(chizat_bach_config(dtype, iters), seeds=seeds)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for config in configs:
            train(config, Path(out) / str(config.seed), progress=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float32")
    parser.add_argument("--batched", action="store_true", help="one vmapped pass per step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    # one-time costs (imports, first kernels) are paid before either side is timed
    ensemble_seconds(args.dtype, 2, seeds[:2], args.batched)
    sequential_seconds(args.dtype, 2, seeds[:2])
    together = ensemble_seconds(args.dtype, args.iters, seeds, args.batched)
    apart = sequential_seconds(args.dtype, args.iters, seeds)
    how = "batched" if args.batched else "in turn"
    print(f"{args.seeds} seeds x {args.iters} iters, {args.dtype}, threads=1")
    print(
        f"one ensemble ({how})  {together:8.2f} s   {args.seeds * args.iters / together:8.1f} it/s"
    )
    print(f"sequential runs      {apart:8.2f} s   {args.seeds * args.iters / apart:8.1f} it/s")
    print(f"throughput ratio (ensemble / sequential): {apart / together:.2f}x")


if __name__ == "__main__":
    main()
