"""Milliseconds per iteration of the Chizat & Bach step (two-layer ReLU, both layers).

Times, interleaved in one process on one problem (clusters data, ``m = 1000``, ``d = 15``,
``n = 256``): the float64 and float32 NumPy transcriptions of ``twonet``
(``chizat_bach_numpy.py``) and a marginlab run, :func:`~marginlab.training.engine.train`
(full-batch GD, exponential loss, ``normalized`` schedule so every attempt is one accepted
step, float64 and float32), and the batched loop that ``marginlab reproduce
chizat-bach`` trained with before it called ``fit`` (``hand_loops.chizat_bach_loop``, the
reference update with its ``1 / sqrt(t + 1)`` schedule, float64 and float32). marginlab's
per-iteration cost is the slope between a long and a short run, so set-up (data, model,
first evaluation) is excluded.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_chizat_bach.py [--iters 300] [--rounds 3]``.

Example
-------
>>> from bench_chizat_bach import chizat_bach_config
>>> chizat_bach_config("float32", 10)["model"]["width"]
1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from chizat_bach_numpy import twonet_float32, twonet_float64
from hand_loops import chizat_bach_loop

from marginlab.config import validate
from marginlab.training.assembly import assemble
from marginlab.training.engine import train

WIDTH, DIM, N = 1000, 15, 256


def chizat_bach_config(dtype: str, iters: int) -> dict:
    """The Chizat & Bach experiment as a marginlab configuration, run for ``iters`` steps.

    The bias is the constant first input coordinate (``bias: none``), as in their code, and
    ``alpha = m * stepsize`` because their step is ``m grad S`` (``S = -log L + const``);
    only their ``1 / sqrt(t + 1)`` decay is left out, which does not change the cost.
    """
    return {
        "loss": "exponential",
        "dtype": dtype,
        "threads": 1,
        "data": {"name": "clusters", "params": {"n": N, "d": DIM, "test_n": 0}},
        "model": {"kind": "two_layer", "width": WIDTH, "train": "both", "bias": "none"},
        "train": {"schedule": "normalized", "alpha": 0.5 * WIDTH, "max_epochs": iters},
        "log": {"every": 10**9},
    }


def marginlab_seconds(dtype: str, iters: int) -> float:
    """Wall seconds of a marginlab run of ``iters`` steps (run directory included)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train(chizat_bach_config(dtype, iters), Path(out) / "run", progress=False)
        return time.perf_counter() - start


def reproduction_seconds(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype, iters: int) -> float:
    """Wall seconds of ``iters`` steps of the reproduction's former loop (one replica)."""
    start = time.perf_counter()
    chizat_bach_loop(x[None], y[None], WIDTH, niter=iters, dtype=dtype)
    return time.perf_counter() - start


def numpy_seconds(step: Callable, x: np.ndarray, y: np.ndarray, iters: int) -> float:
    """Wall seconds of ``iters`` steps of a NumPy transcription from a fresh N(0, 1) init."""
    w = np.random.default_rng(0).standard_normal((WIDTH, DIM + 1))
    start = time.perf_counter()
    step(x, y, w, 0.5, iters)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = assemble(validate(chizat_bach_config("float64", 1))).data
    x, y = data.x_train.numpy(), data.y_train.numpy().astype(np.float64) * 2 - 1
    short = max(args.iters // 10, 1)
    timers: dict[str, Callable[[], float]] = {
        "numpy float64": lambda: numpy_seconds(twonet_float64, x, y, args.iters) / args.iters,
        "numpy float32": lambda: numpy_seconds(twonet_float32, x, y, args.iters) / args.iters,
        **{
            f"marginlab {dtype}": (
                lambda dtype=dtype: (
                    (marginlab_seconds(dtype, args.iters) - marginlab_seconds(dtype, short))
                    / (args.iters - short)
                )
            )
            for dtype in ("float64", "float32")
        },
        **{
            f"loop {dtype}": (
                lambda dtype=dtype: (
                    (
                        reproduction_seconds(data.x_train, data.y_train, dtype, args.iters)
                        - reproduction_seconds(data.x_train, data.y_train, dtype, short)
                    )
                    / (args.iters - short)
                )
            )
            for dtype in (torch.float64, torch.float32)
        },
    }
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.rounds):  # interleaved so load from other processes hits all alike
        for name, timer in timers.items():
            samples[name].append(timer() * 1e3)
    ms = {name: statistics.median(values) for name, values in samples.items()}
    print(f"m={WIDTH} d={DIM} n={N} iters={args.iters} rounds={args.rounds} threads=1")
    for name, value in ms.items():
        print(
            f"{name:16s} {value:7.3f} ms/iter   numpy64/this {ms['numpy float64'] / value:5.2f}"
            f"   numpy32/this {ms['numpy float32'] / value:5.2f}"
        )


if __name__ == "__main__":
    main()
