"""Full-batch gradient descent on the Lyu & Li MNIST CNN: epochs per second and the
fraction of this machine's matrix-multiplication peak it reaches.

Run: ``python benchmarks/bench_mnist_cnn.py [--n 2000] [--epochs 4]`` with MNIST under
``$MARGINLAB_DATA`` (or ``--data-dir``). Everything is measured in this one process: the
matmul peak (float32 and float64) is the baseline that the CNN's throughput is divided by.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from marginlab import load_run, train
from marginlab.experiments.presets import LYU_LI_MNIST_CNN


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` GFLOP/s of a square matrix product."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass, counted from conv/linear shapes."""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += 2.0 * output.numel() * module.in_channels * kh * kw / module.groups
        elif isinstance(module, torch.nn.Linear):
            total += 2.0 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="MNIST training images")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per dtype")
    parser.add_argument("--data-dir", default=os.environ.get("MARGINLAB_DATA"))
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("MNIST not found: pass --data-dir or set MARGINLAB_DATA")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dtype_name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        # The machine's speed drifts: the peak is the best of a measurement before and one
        # after the CNN's epochs.
        peak = matmul_gflops(dtype)
        config = {
            "name": f"bench-{dtype_name}",
            "dtype": dtype_name,
            "loss": "cross_entropy",
            "data": {"name": "mnist", "n_train": args.n, "n_test": 1},
            "model": {"kind": "cnn", "spec": LYU_LI_MNIST_CNN, "bias": "first"},
            "train": {
                "schedule": "constant",
                "lr": 0.01,
                "max_epochs": args.epochs,
                "target_log10_loss": None,
            },
            "log": {"every": 1, "checkpoint_decades": 1000},
        }
        run = load_run(
            train(config, tempfile.mkdtemp() + "/run", data_dir=args.data_dir, progress=False)
        )
        peak = max(peak, matmul_gflops(dtype))
        times = run.metrics["wall_time"].to_numpy()
        per_epoch = float((times[-1] - times[1]) / (len(times) - 2))  # skip the first epoch
        x, _ = run.load_data("train")
        # one epoch = gradient (forward + backward, about 3 forwards) + evaluation forward
        epoch_flops = 4 * forward_flops(run.load_model().to(x.dtype), x)
        achieved = epoch_flops / per_epoch / 1e9
        print(
            f"{dtype_name}: matmul peak {peak:7.1f} GFLOP/s | CNN epoch {per_epoch:6.3f} s "
            f"({1 / per_epoch:5.2f} epochs/s) | {epoch_flops / 1e9:6.1f} GFLOP/epoch | "
            f"{achieved:6.1f} GFLOP/s = {100 * achieved / peak:5.1f}% of peak"
        )


if __name__ == "__main__":
    main()
