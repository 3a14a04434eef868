"""Speculative retries against a plain run: the digits-cnn preset, both ways, in one command.

Trains the ``digits-cnn`` preset (one thread per process) to ``--target`` with
``train.speculate`` off and on, alternating ``--repeats`` times so that both sides see the
same machine, and reports the wall time of each and their ratio. The two runs must log the
same metrics (apart from wall time); the script checks that too.

Run: ``python benchmarks/bench_speculation.py [--target -50] [--repeats 2]``.

Example
-------
>>> seconds, rows = run_seconds(speculate=False, target=-2.0)
>>> seconds > 0 and rows[-1]["log10_loss_mean"] < -2.0
True
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from marginlab import load_run, train
from marginlab.experiments.presets import preset


def run_seconds(speculate: bool, target: float) -> tuple[float, list[dict]]:
    """Wall seconds of one training run of the preset, and its metrics without wall times."""
    config = preset("digits-cnn")
    config["train"].update(speculate=speculate, target_log10_loss=target)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        path = train(config, f"{directory}/run", progress=False)
        seconds = time.perf_counter() - start
        rows = load_run(path).store.metrics()
    return seconds, [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=-50.0, help="log10 training loss")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    plain, ahead = [], []
    for _ in range(args.repeats):
        seconds, reference = run_seconds(False, args.target)
        plain.append(seconds)
        seconds, rows = run_seconds(True, args.target)
        ahead.append(seconds)
        if rows != reference:
            raise SystemExit("the speculative run logged different metrics")
    last = reference[-1]
    print(
        f"digits-cnn to 1e{args.target:g}: epoch {last['epoch']}, {last['attempts']} attempts "
        f"({last['rollbacks']} rolled back); identical metrics both ways"
    )
    for name, times in (("plain", plain), ("speculative", ahead)):
        each = ", ".join(f"{t:.1f}" for t in times)
        print(f"{name:12s} median {statistics.median(times):7.1f} s  ({each})")
    print(f"speed-up: {statistics.median(plain) / statistics.median(ahead):.2f}x")


if __name__ == "__main__":
    main()
