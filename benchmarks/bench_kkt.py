"""Time one KKT certificate (Lyu & Li B7) on the digits CNN and on 2000 MNIST images.

Each model is trained here until it fits its training set (or taken from ``--digits-run`` /
``--mnist-run``), then certified at ``tau = 0.1``. The time is printed beside the time of
one full-batch gradient (``grad log L``), the unit a training epoch is made of, with the
number of active constraints and the method (dense or matrix-free) the budget chose.

MNIST is read from ``$MARGINLAB_DATA`` (or ``--data-dir``); without it that part is skipped.

    python benchmarks/bench_kkt.py [--digits-run RUN] [--mnist-run RUN] [--tau 0.1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from marginlab import load_run, train
from marginlab.experiments.presets import preset
from marginlab.losses import get_loss
from marginlab.measure.gradient import log_loss_and_grad
from marginlab.measure.kkt import DEFAULT_MEMORY_BUDGET, kkt_certificates
from marginlab.measure.margins import evaluate, trainable_parameters
from marginlab.numerics import LN10


def _trained(name: str, overrides: dict, scratch: Path, data_dir: str | None) -> Path:
    config = preset(name)
    for section, values in overrides.items():
        if isinstance(values, dict):
            config[section].update(values)
        else:
            config[section] = values
    print(f"training {name} {overrides} ...", flush=True)
    started = time.perf_counter()
    path = train(config, scratch / name, data_dir=data_dir, progress=False)
    print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def _bench(label: str, run_dir: Path, tau: float, budget: int) -> None:
    run = load_run(run_dir)
    model = run.load_model("last")
    x, y = run.load_data("train")
    loss = get_loss(run.config["loss"])
    params = trainable_parameters(model)

    started = time.perf_counter()
    log_loss_and_grad(model, params, x, y, loss)
    gradient_time = time.perf_counter() - started

    started = time.perf_counter()
    result = kkt_certificates(model, x, y, loss, taus=[tau], memory_budget=budget)
    kkt_time = time.perf_counter() - started
    cert = result.certificates[0]
    level = evaluate(model, x, y, loss).log_loss_mean / LN10
    print(
        f"{label}: {len(x)} samples, {result.n_params:,} parameters, "
        f"{result.n_constraints:,} constraints, log10 mean loss {level:.1f}"
    )
    print(
        f"  tau={tau:g}: {cert.n_active} active, method {cert.method}, {cert.iterations} NNLS "
        f"iterations, eps_rel {cert.eps_rel:.3e}, delta {cert.delta:.3e}, "
        f"loss-weight eps_rel {result.loss_weights.eps_rel:.3e}"
    )
    print(
        f"  certificate {kkt_time:.2f} s; full-batch gradient {gradient_time:.3f} s; "
        f"ratio {kkt_time / gradient_time:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits-run", type=Path, help="a finished digits-cnn run")
    parser.add_argument("--mnist-run", type=Path, help="a finished MNIST CNN run")
    parser.add_argument("--data-dir", default=os.environ.get("MARGINLAB_DATA"))
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--memory-budget", type=int, default=DEFAULT_MEMORY_BUDGET)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        digits = args.digits_run or _trained(
            "digits-cnn", {"train": {"target_log10_loss": -10.0}}, scratch, None
        )
        _bench("digits CNN", digits, args.tau, args.memory_budget)
        mnist = args.mnist_run
        if mnist is None and args.data_dir is None:
            print("MNIST: skipped (set MARGINLAB_DATA or pass --data-dir / --mnist-run)")
            return
        if mnist is None:
            mnist = _trained(
                "mnist-cnn-loss-based",
                {
                    "dtype": "float32",  # training speed; the certificate works in float64
                    "data": {"n_train": 2000, "n_test": 100},
                    "train": {"max_epochs": 200, "target_log10_loss": -6.0},
                },
                scratch,
                args.data_dir,
            )
        _bench("MNIST CNN", mnist, args.tau, args.memory_budget)


if __name__ == "__main__":
    main()
