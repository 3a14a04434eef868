"""``marginlab attack``: robust accuracy of a run's checkpoints (Lyu & Li's Figure 8).

A thin wrapper: :func:`marginlab.results.robustness.attack_along_training` computes the
report; this prints it, saves it into the run and draws its figure.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from marginlab.commands.diagnose import checkpoint_arg
from marginlab.runs.checkpoint_spec import CheckpointSpec


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.1,0.5,1, got {text!r}"
        ) from None


def _checkpoints(text: str) -> list[CheckpointSpec]:
    specs = [checkpoint_arg(part.strip()) for part in text.split(",") if part.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("give at least one checkpoint, e.g. 1e-10,last")
    return specs


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as steps=1000, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _attack(args: argparse.Namespace) -> int:
    import pandas as pd

    from marginlab.measure.margins import MARGIN_LABELS
    from marginlab.report import robustness_figure
    from marginlab.results.robustness import attack_along_training
    from marginlab.runs.run import load_run

    run = load_run(args.run_dir)
    try:
        report = attack_along_training(
            run,
            args.checkpoints,
            split=args.split,
            n=args.n,
            seed=args.seed,
            norm=args.norm,
            attack=args.attack,
            eps=args.eps,
            options=dict(args.option),
            batch_size=args.batch_size,
            device=args.device,
        )
    except ValueError as error:
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    paired = report.paired()
    # the comparisons where some sample moved; the JSON keeps them all
    moved = paired[paired["more_robust"] + paired["less_robust"] > 0]
    with pd.option_context("display.width", 200, "display.max_columns", None):
        table = report.table().rename(columns=MARGIN_LABELS)  # names the normalization
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if len(moved):
            print("\nfrom each checkpoint to the next, the same samples (exact sign test):")
            print(moved.to_string(index=False, float_format=lambda v: f"{v:.2g}"))
    path = report.save(run)
    figure = robustness_figure(run, report, path.with_suffix(".png"))
    for written in (path, path.with_suffix(".csv"), figure):
        print(f"wrote {written}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    attack = sub.add_parser(
        "attack",
        help="attack a run's checkpoints; robust accuracy against epsilon",
        description="Attack the same samples at several checkpoints of a run and write "
        "robustness-<norm>-<attack>-<split>.json/.csv/.png into the run directory.",
    )
    attack.add_argument("run_dir", help="the run directory whose checkpoints are attacked")
    attack.add_argument(
        "--checkpoints",
        type=_checkpoints,
        default="1e-10,1e-20,last",
        help="comma-separated: loss levels (1e-20: first checkpoint below it), epochs, or "
        "'last' (default 1e-10,1e-20,last)",
    )
    attack.add_argument(
        "--norm", choices=["l2", "linf"], default="l2", help="the norm of the perturbations"
    )
    attack.add_argument(
        "--attack",
        help="l2: cw (default), deepfool, fmn; linf: pgd (default), fmn; best: all of the "
        "norm's attacks, keeping each sample's closest example; or any registered attack",
    )
    attack.add_argument(
        "--split", choices=["train", "test"], default="train", help="which samples to attack"
    )
    attack.add_argument(
        "--n",
        type=int,
        default=2000,
        help="samples, the same at every checkpoint; the cost grows with it (about a second "
        "per sample and checkpoint for cw on the MNIST CNN, 2 cores)",
    )
    attack.add_argument("--seed", type=int, default=0, help="seed of the sample draw")
    attack.add_argument(
        "--eps",
        type=_floats,
        help="comma-separated epsilons of the table (and of PGD); default per norm",
    )
    attack.add_argument("--batch-size", type=int, default=128, help="samples attacked at once")
    attack.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to attack"
    )
    attack.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an attack option, e.g. steps=1000, or cw.steps=1000 with --attack best "
        "(repeatable; each attack's options are ATTACKS[name].options)",
    )
    attack.set_defaults(func=_attack)
