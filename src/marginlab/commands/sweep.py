"""``marginlab sweep``: a grid of runs as Ray tasks, with a summary table."""

from __future__ import annotations

import argparse
from pathlib import Path


def _sweep(args: argparse.Namespace) -> int:
    from marginlab.commands.train import HEADERS, SHOWN, check_ignored, load_spec
    from marginlab.config import ConfigError, apply_overrides, validate
    from marginlab.sweep import grid_overrides, sweep

    raw = load_spec(args.spec)
    config = apply_overrides(raw, list(args.set))
    # A key no trial reads is refused before any trial starts, and so is a grid in which
    # no trial is valid (one invalid trial among valid ones fails on its own, in the
    # summary).
    errors, trials = [], grid_overrides(args.grid)
    for i, assignments in enumerate(trials):
        try:
            trial = validate(apply_overrides(config, assignments))
        except ConfigError as error:
            errors.append(f"{','.join(assignments)}: {error}")
            continue
        check_ignored(trial, raw if i == 0 else {}, [*args.set, *assignments])
    if errors and len(errors) == len(trials):
        raise ConfigError(f"--grid: no trial is valid; the first, {errors[0]}")
    out = Path(args.out or f"runs/sweep-{config.get('name', 'run')}")
    summary = sweep(
        config,
        args.grid,
        out,
        address=args.address,
        max_parallel=args.max_parallel,
        data_dir=args.data_dir,
        ensembles={"auto": None, "yes": True, "no": False}[args.ensembles],
    )
    shown = summary[[c for c in SHOWN if c in summary]].rename(columns=HEADERS)
    print(shown.to_string(index=False))
    # why each trial that did not reach its target ended (summary.csv: the reason column)
    for _, row in summary.iterrows():
        if row.get("target_reached") not in (True,) and row.get("reason"):
            print(f"{row['trial']}: {row['reason']}")
    print(f"summary: {out / 'summary.csv'} (one row per trial, every metric and the reason)")
    return 1 if (summary["state"] == "failed").any() else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sweep", help="run a grid of configurations as Ray tasks")
    parser.add_argument("spec", help="preset name or YAML file shared by every trial")
    parser.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="KEY=V1,V2",
        help="values of one key; the trials are the product of all --grid (repeatable)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="shared override"
    )
    parser.add_argument("--out", help="sweep directory (default runs/sweep-<name>)")
    parser.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--max-parallel", type=int, help="trials at once (default: all cores)")
    parser.add_argument("--data-dir", help="where MNIST/CIFAR live (default $MARGINLAB_DATA)")
    parser.add_argument(
        "--ensembles",
        choices=["auto", "yes", "no"],
        default="auto",
        help="train new full-batch trials that differ only in seed, step sizes or stopping "
        "rules as one ensemble task, each in its own run directory (auto: on a GPU)",
    )
    parser.set_defaults(func=_sweep)
