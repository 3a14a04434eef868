"""``marginlab kkt`` and ``marginlab reference``: print a run's KKT table or a reference.

Thin wrappers: the library computes the records (:mod:`marginlab.results.kkt`,
:mod:`marginlab.results.reference`), these print and save them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from marginlab.runs.checkpoint_spec import SPEC_HELP, CheckpointSpec, parse_checkpoint

if TYPE_CHECKING:  # torch loads only when a command runs, so `marginlab --help` stays fast
    pass

# Spelled out so that building the parser does not import the references (a test keeps them
# equal to marginlab.results.reference.REFERENCE_KINDS).
REFERENCE_KINDS = ("svm", "f1", "rkhs", "nonconvex")


def checkpoint_arg(text: str) -> CheckpointSpec:
    """``--checkpoint``: ``last``, an epoch or a loss level, as every command reads it."""
    try:
        return parse_checkpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _checkpoints_arg(text: str) -> CheckpointSpec | str:
    return text if text == "all" else checkpoint_arg(text)


def _kkt(args: argparse.Namespace) -> int:
    from marginlab.measure.kkt import DEFAULT_MEMORY_BUDGET, DEFAULT_TAUS
    from marginlab.results.kkt import kkt_along_training
    from marginlab.runs.run import load_run

    run = load_run(args.run_dir)
    table = kkt_along_training(
        run,
        args.checkpoint,
        taus=args.tau or DEFAULT_TAUS,
        memory_budget=args.memory_budget or DEFAULT_MEMORY_BUDGET,
    )
    print(table)
    print(f"written: {table.save(run)}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from marginlab.results.reference import compare_reference
    from marginlab.runs.run import load_run

    run = load_run(args.run_dir)
    epoch = run.checkpoint(args.checkpoint).epoch
    print(f"run {run.path.name}, epoch {epoch}, reference {args.kind}")
    try:
        comparison = compare_reference(
            run, args.kind, args.checkpoint, tol=args.tol, starts=args.starts, seed=args.seed
        )
    except ValueError as error:
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    print(comparison)
    print(f"written: {comparison.save(run)}")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    kkt = sub.add_parser(
        "kkt",
        help="how close a run's checkpoints are to a KKT point of the max-margin problem",
        description="For each checkpoint, certificates that the parameters, rescaled to a "
        "minimum margin of 1, are an approximate (eps, delta)-KKT point of the max-margin "
        "problem (Lyu & Li 2020). eps_rel: how far they are from a nonnegative combination "
        "of the margins' gradients, relative to their norm (stationarity); delta: the "
        "largest multiplier times its constraint's slack (complementary slackness); 1-beta: "
        "one minus the cosine between the parameters and the negative loss gradient. All "
        "three go to 0 as training converges to a KKT point; the table ends with how each "
        "moved. tau: the certificate that gives multipliers only to constraints within "
        "1 + tau of the minimum margin; 'weights': the one with the loss weights.",
    )
    kkt.add_argument("run_dir", help="the run directory")
    kkt.add_argument(
        "--checkpoint",
        type=_checkpoints_arg,
        default=parse_checkpoint("last"),
        help=f"all, or {SPEC_HELP} (default last)",
    )
    kkt.add_argument(
        "--tau",
        type=_positive_float,
        nargs="+",
        help="activity tolerances (default: 0.001 0.01 0.1 1)",
    )
    kkt.add_argument(
        "--memory-budget",
        type=int,
        help="bytes for a dense Jacobian; above it the solve is matrix-free (default 256 MiB)",
    )
    kkt.set_defaults(func=_kkt)

    reference = sub.add_parser(
        "reference", help="a reference max-margin solution beside the run's margin"
    )
    reference.add_argument("run_dir", help="the run directory")
    reference.add_argument(
        "--kind",
        choices=REFERENCE_KINDS,
        required=True,
        help="svm: hard-margin SVM, for model.kind linear, deep_linear or diagonal_linear; "
        "f1: the F1 (variation-norm) max-margin of a ReLU two-layer net with both layers "
        "trained (two_layer with train: both, or nn.Sequential(Linear, ReLU, Linear)); "
        "rkhs: the kernel max-margin, for two_layer with train: output; nonconvex: the best "
        "normalized margin of the run's own architecture from random starts (any "
        "homogeneous model)",
    )
    reference.add_argument(
        "--checkpoint", type=checkpoint_arg, default=parse_checkpoint("last"), help=SPEC_HELP
    )
    reference.add_argument("--tol", type=float, default=1e-4, help="f1: relative gap to reach")
    reference.add_argument("--starts", type=int, default=20, help="nonconvex: random starts")
    reference.add_argument("--seed", type=int, default=0, help="nonconvex: seed of the starts")
    reference.set_defaults(func=_reference)
