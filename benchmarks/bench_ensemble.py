"""Throughput of 32 seeds of the Chizat & Bach experiment: one ensemble vs 32 runs.

Both sides call :func:`~marginlab.training.ensemble.train_ensemble` on the configuration of
``bench_chizat_bach.py`` (``m = 1000``, ``d = 15``, ``n = 256``, both layers): once with all
seeds stacked in one vmapped program, then once per seed, one after the other. Wall time
includes set-up on both sides, since that is what a user of either pays.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py [--seeds 32] [--iters 100]``.

Example
-------
>>> seconds = ensemble_seconds("float32", 2, [0, 1])
>>> seconds > 0
True
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_chizat_bach import chizat_bach_config

from marginlab.training.ensemble import train_ensemble


def ensemble_seconds(dtype: str, iters: int, seeds: list[int]) -> float:
    """Wall seconds of one ``train_ensemble`` call over ``seeds``."""
    start = time.perf_counter()
    train_ensemble(chizat_bach_config(dtype, iters), seeds=seeds)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float32")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    together = ensemble_seconds(args.dtype, args.iters, seeds)
    apart = sum(ensemble_seconds(args.dtype, args.iters, [seed]) for seed in seeds)
    print(f"{args.seeds} seeds x {args.iters} iters, {args.dtype}, threads=1")
    print(f"one ensemble  {together:8.2f} s   {args.seeds * args.iters / together:8.1f} it/s")
    print(f"sequential    {apart:8.2f} s   {args.seeds * args.iters / apart:8.1f} it/s")
    print(f"throughput ratio (ensemble / sequential): {apart / together:.2f}x")


if __name__ == "__main__":
    main()
