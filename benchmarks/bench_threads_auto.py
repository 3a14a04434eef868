"""``threads: auto`` against one thread and torch's default, while the machine is busy.

Starts a load (a process that keeps every core busy with large float64 matrix products),
then trains the ``gaussians-linear`` preset for ``--epochs`` epochs in fresh processes with
the default ``threads`` (auto), with ``--threads 1`` and with one thread per core (torch's own
default), in turn, ``--repeats`` times each, and prints the median wall time of each
process and of its training, and their ratios to one thread. Pairing the three in turn keeps
the ratios fair when the machine's speed drifts.

Usage::

    python benchmarks/bench_threads_auto.py --epochs 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

LOAD = """
import torch
torch.set_num_threads(os.cpu_count())
a = torch.randn(1500, 1500, dtype=torch.float64)
while True:
    a = (a @ a).tanh_()
"""


def train_seconds(epochs: int, threads: str | None, out: str) -> tuple[float, float]:
    """Wall seconds of one ``marginlab run gaussians-linear`` process, and of its training
    (the ``wall_time`` of its last metrics row)."""
    command = [sys.executable, "-m", "marginlab", "run", "gaussians-linear", "--out", out]
    command += ["--set", f"train.max_epochs={epochs}", "--set", "log.every=1000"]
    command += [] if threads is None else ["--threads", threads]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    whole = time.perf_counter() - start
    with open(os.path.join(out, "metrics.jsonl")) as rows:
        return whole, json.loads(rows.readlines()[-1])["wall_time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cores = str(os.cpu_count())
    settings = {"auto (default)": None, "threads 1": "1", f"threads {cores} (one per core)": cores}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    load = subprocess.Popen([sys.executable, "-c", "import os\n" + LOAD])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the load is stopped too
    try:
        time.sleep(2.0)  # let the load reach full speed
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                for name, threads in settings.items():
                    out = os.path.join(tmp, f"{repeat}-{threads}")
                    times[name].append(train_seconds(args.epochs, threads, out))
                    whole, training = times[name][-1]
                    print(f"run {repeat}: {name}: {whole:.2f} s ({training:.2f} s training)")
    finally:
        load.kill()
    print(f"gaussians-linear, {args.epochs} epochs, {args.repeats} runs each, all cores loaded")
    ratio = "/ threads 1"
    print(f"{'setting':<26} {'process s':>9} {ratio:>12} {'training s':>10} {ratio:>12}")
    one = [statistics.median(t[i] for t in times["threads 1"]) for i in (0, 1)]
    for name, values in times.items():
        whole, training = (statistics.median(t[i] for t in values) for i in (0, 1))
        print(
            f"{name:<26} {whole:>9.2f} {whole / one[0]:>12.2f} {training:>10.2f} "
            f"{training / one[1]:>12.2f}"
        )


if __name__ == "__main__":
    main()
