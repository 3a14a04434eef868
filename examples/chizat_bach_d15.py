"""Chizat & Bach in their own setting: d = 15, n = 256, k = 3, width 128, 50k steps.

Both layers trained with the reference schedule against the F1 max margin (column
generation; in d = 15 the inner maximization is a multistart ascent, so the upper bound is
not certified), and the output layer alone against the RKHS max margin of the frozen
first layer and of the arc-cosine kernel (checked against a Monte-Carlo estimate).

    python examples/chizat_bach_d15.py [--steps 50000] [--output-steps 200000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from marginlab.experiments.papers.chizat_bach import (
    clusters_problem,
    f1_ratio,
    rkhs_ratio,
    train_twonet,
)
from marginlab.measure.references.f1 import f1_max_margin
from marginlab.measure.references.rkhs import arccos_kernel, empirical_kernel, kernel_svm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--output-steps", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = clusters_problem(256, 15, replicas=1, test_n=1)
    x, y = problem.x[0], problem.y[0]

    started = time.perf_counter()
    reference = f1_max_margin(x.numpy(), y.numpy(), tol=1e-3, max_rounds=300)
    print(
        f"gamma_1 in [{reference.lower:.6g}, {reference.upper:.6g}] (gap {reference.gap:.2e}, "
        f"certified {reference.certified}); {time.perf_counter() - started:.0f} s"
    )

    started = time.perf_counter()
    both = train_twonet(problem.x, problem.y, args.width, niter=args.steps)
    ratio = float(f1_ratio(both.best_margin()[0], reference))
    print(
        f"both layers, m = {args.width}, {args.steps} steps: margin / (gamma_1 / 2) = "
        f"{ratio:.4f} ({time.perf_counter() - started:.0f} s)"
    )

    started = time.perf_counter()
    output = train_twonet(problem.x, problem.y, args.width, train="output", niter=args.output_steps)
    empirical = kernel_svm(empirical_kernel(output.first[0], x, x), y.numpy())
    limit = kernel_svm(arccos_kernel(x, x), y.numpy())
    generator = np.random.default_rng(0)
    features = np.maximum(x.numpy() @ generator.standard_normal((x.shape[1], 200_000)), 0.0)
    monte_carlo = features @ features.T / features.shape[1]
    closed_form = arccos_kernel(x, x)
    kernel_error = float(np.abs(monte_carlo - closed_form).max() / np.abs(closed_form).max())
    print(
        f"output layer only ({time.perf_counter() - started:.0f} s); Monte-Carlo check of the "
        f"arc-cosine kernel: largest error {kernel_error:.1e} of its largest entry"
    )
    steps = [t for t in (1_000, 10_000, 100_000, args.output_steps) if t <= args.output_steps]
    for t in steps:
        margin = float(np.nanmax(output.margins[:t, 0]))
        print(
            f"  after {t:>7} steps: margin / (sqrt(m) gamma_2) = "
            f"{rkhs_ratio(margin, empirical, args.width):.4f} (empirical kernel of the frozen "
            f"layer), {rkhs_ratio(margin, limit, args.width):.4f} (arc-cosine kernel)"
        )


if __name__ == "__main__":
    main()
