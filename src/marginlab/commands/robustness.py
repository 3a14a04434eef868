"""``marginlab attack``: robust accuracy of a run's checkpoints (Lyu & Li Fig 8)."""

from __future__ import annotations

import argparse
import json
import sys

import yaml


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.1,0.5,1, got {text!r}"
        ) from None


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as steps=1000, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _attack(args: argparse.Namespace) -> int:
    import pandas as pd

    from marginlab.measure.robustness import ATTACKS, result_paths, robustness_along_training

    try:
        table = robustness_along_training(
            args.run_dir,
            [part.strip() for part in args.checkpoints.split(",") if part.strip()],
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
    attack = args.attack or ATTACKS[args.norm][0]
    paths = result_paths(args.run_dir, args.norm, attack, args.split)
    # the comparisons where some sample moved; the JSON keeps them all
    paired = json.loads(paths["json"].read_text())["paired"]
    moved = [row for row in paired if row["more_robust"] + row["less_robust"]]
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if moved:
            print("\nfrom each checkpoint to the next, the same samples (exact sign test):")
            print(pd.DataFrame(moved).to_string(index=False, float_format=lambda v: f"{v:.2g}"))
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    attack = sub.add_parser(
        "attack",
        help="attack a run's checkpoints; robust accuracy against epsilon",
        description="Attack the same samples at several checkpoints of a run and write "
        "robustness-<norm>-<attack>-<split>.json/.csv/.png into the run directory.",
    )
    attack.add_argument("run_dir")
    attack.add_argument(
        "--checkpoints",
        default="1e-10,1e-20,last",
        help="comma-separated: loss levels (1e-20: first checkpoint below it), epochs, or "
        "'last' (default 1e-10,1e-20,last)",
    )
    attack.add_argument("--norm", choices=["l2", "linf"], default="l2")
    attack.add_argument(
        "--attack",
        choices=["cw", "deepfool", "fmn", "pgd", "best"],
        help="l2: cw (default), deepfool, fmn; linf: pgd (default), fmn; best: all of the "
        "norm's attacks, keeping each sample's closest example",
    )
    attack.add_argument("--split", choices=["train", "test"], default="train")
    attack.add_argument("--n", type=int, default=2000, help="samples (default 2000)")
    attack.add_argument("--seed", type=int, default=0)
    attack.add_argument(
        "--eps",
        type=_floats,
        help="comma-separated epsilons of the table (and of PGD); default per norm",
    )
    attack.add_argument("--batch-size", type=int, default=128)
    attack.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    attack.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an attack option, e.g. steps=1000, or cw.steps=1000 with --attack best "
        "(repeatable; see ATTACK_OPTIONS)",
    )
    attack.set_defaults(func=_attack)
