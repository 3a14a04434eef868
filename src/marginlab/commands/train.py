"""``marginlab run``, ``resume`` and ``presets``."""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from marginlab.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    ignored_keys,
    load_config_file,
    validate,
)
from marginlab.experiments.presets import PRESETS, preset

if TYPE_CHECKING:
    from marginlab.runs.checkpoint_spec import CheckpointSpec


# Columns of a printed table of trials (a sweep's, --replicas'); summary.csv keeps them all.
SHOWN = (
    "trial",
    "state",
    "target_reached",
    "epoch",
    "log10_loss_mean",
    "train_acc",
    "normalized_margin_layers",
)
# Headers that name what each number is.
HEADERS = {
    "target_reached": "target",
    "log10_loss_mean": "log10 loss",
    "normalized_margin_layers": "q_min/prod||W_i||",
}


def load_spec(spec: str) -> dict:
    """Return the configuration named by SPEC: a preset name or a YAML file."""
    if spec in PRESETS:
        return preset(spec)
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.exists():
        config = load_config_file(path)
        config.setdefault("name", path.stem)
        return config
    raise ConfigError(
        f"SPEC: {spec!r} is neither a preset nor a YAML file; presets: {', '.join(PRESETS)}"
    )


def check_ignored(config: RunConfig, raw: dict, assignments: list[str]) -> None:
    """Refuse a ``--set`` (or ``--grid``) key that the configuration does not read, and
    note the ones of the preset or YAML file (``raw``) that it does not read."""
    typed = [text.partition("=")[0].strip() for text in assignments]
    refused = ignored_keys(config, typed)
    if refused:
        raise ConfigError(f"--set {refused[0]}; drop it, or choose that schedule")
    given = [f"train.{key}" for key in raw.get("train") or {}]
    for note in ignored_keys(config, [key for key in given if key not in typed]):
        print(f"marginlab: note: {note}", file=sys.stderr)


def _checkpoint_spec(text: str) -> CheckpointSpec:
    from marginlab.runs.checkpoint_spec import CheckpointSpecError, parse_checkpoint

    try:
        return parse_checkpoint(text)
    except CheckpointSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _plot_training(path: Path) -> Path:
    """Draw the finished run's curves; a figure that cannot be written is said so."""
    from marginlab.report import plot_training
    from marginlab.runs.store import RunWriteError

    try:
        return plot_training(path)
    except OSError as error:
        raise RunWriteError(
            f"could not write {path / 'training.png'}: {error.strerror or error}; the run "
            f"itself is complete in {path}"
        ) from error


def _run(args: argparse.Namespace) -> int:
    from marginlab.training.engine import train

    overrides = list(args.set)
    shortcuts = (
        (args.seed, "seed"),
        (args.device, "device"),
        (args.dtype, "dtype"),
        (args.threads, "threads"),
    )
    for value, key in shortcuts:
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.tensorboard:
        overrides.append("log.tensorboard=true")
    raw = load_spec(args.spec)
    # a copy: the notes on ignored keys are about what the spec itself says
    config = validate(apply_overrides(copy.deepcopy(raw), overrides))
    check_ignored(config, raw, overrides)
    if args.replicas is not None:
        return _run_replicas(config, args)
    path = train(config, args.out, data_dir=args.data_dir)
    print(f"run directory: {path}\nplot: {_plot_training(path)}")
    return 0


def _run_replicas(config: RunConfig, args: argparse.Namespace) -> int:
    """``--replicas K``: seeds ``seed .. seed+K-1`` trained together, one run each."""
    import dataclasses

    import pandas as pd

    from marginlab.sweep import trial_row
    from marginlab.training.engine import default_run_dir
    from marginlab.training.ensemble import replica_configs, train_ensemble

    if args.replicas < 1:
        raise ConfigError(f"--replicas: expected a positive count, got {args.replicas}")
    seeds = list(range(config.seed, config.seed + args.replicas))
    named = dataclasses.replace(config, name=f"{config.name}-x{args.replicas}")
    out = Path(args.out) if args.out else default_run_dir(named)
    paths = [out / f"seed={seed}" for seed in seeds]
    train_ensemble(replica_configs(config, seeds=seeds), paths, data_dir=args.data_dir)
    summary = pd.DataFrame([{"trial": p.name, **trial_row(p)} for p in paths])
    summary.to_csv(out / "summary.csv", index=False)
    shown = summary[[c for c in SHOWN if c in summary]].rename(columns=HEADERS)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print(f"replicas: {out}/seed=* (one run directory each; summary.csv)")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from marginlab.training.engine import resume

    path = resume(
        args.run_dir, list(args.set), from_checkpoint=args.from_checkpoint, data_dir=args.data_dir
    )
    print(f"run directory: {path}\nplot: {_plot_training(path)}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    width = max(len(name) for name in PRESETS)
    for name, (description, _) in PRESETS.items():
        print(f"{name:<{width}}  {description}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="train from a preset or a YAML config",
        description="Train from a preset or a YAML config, printing an estimate of the cost "
        "first and the progress with the remaining time while it trains. Every "
        "configuration key, its type, default and meaning: `marginlab config --list`; a "
        "preset's full configuration: `marginlab config PRESET`.",
    )
    run.add_argument("spec", help="preset name (see `marginlab presets`) or a YAML file")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.batch_size=100 (repeatable)",
    )
    run.add_argument("--out", help="run directory (default runs/<name>-<timestamp>)")
    run.add_argument("--data-dir", help="where MNIST/CIFAR live (default $MARGINLAB_DATA)")
    run.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], help="shortcut for --set device=..."
    )
    run.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        help="shortcut for --set dtype=... (margins and losses are float64 either way)",
    )
    run.add_argument("--seed", type=int, help="shortcut for --set seed=...")
    run.add_argument(
        "--threads",
        type=int,
        help="shortcut for --set threads=...; by default one thread for small steps, all "
        "cores for large ones",
    )
    run.add_argument(
        "--tensorboard",
        action="store_true",
        help="write the metrics as TensorBoard scalars to RUN_DIR/tensorboard while training",
    )
    run.add_argument(
        "--replicas",
        type=int,
        metavar="K",
        help="train K seeds (seed, seed+1, ...) together, batched on a GPU; full-batch "
        "configs only; one run directory per seed, OUT/seed=S, and OUT/summary.csv",
    )
    run.set_defaults(func=_run)

    resume = sub.add_parser("resume", help="continue an interrupted or finished run")
    resume.add_argument("run_dir", help="the run directory to continue")
    resume.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.max_epochs, train.target_log10_loss or log.* only",
    )
    resume.add_argument(
        "--from-checkpoint",
        type=_checkpoint_spec,
        metavar="CHECKPOINT",
        help="continue from this intact checkpoint: last, an epoch, or a loss level such as "
        "1e-20 (the metrics and the checkpoint index are cut back to its epoch); needed when "
        "a file of the run is damaged, as the error then says",
    )
    resume.add_argument("--data-dir", help="where MNIST/CIFAR live (default: as the run)")
    resume.set_defaults(func=_resume)

    presets = sub.add_parser("presets", help="list the presets, one line each")
    presets.set_defaults(func=_presets)
