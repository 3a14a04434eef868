"""The ``marginlab`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marginlab.config import ConfigError, apply_overrides, load_config_file, validate
from marginlab.experiments.presets import PRESETS, preset


def _load_spec(spec: str) -> dict:
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


def _cmd_run(args: argparse.Namespace) -> int:
    from marginlab.runs.plots import plot_training
    from marginlab.training.engine import train

    overrides = list(args.set)
    for flag, key in ((args.seed, "seed"), (args.device, "device"), (args.dtype, "dtype")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    config = validate(apply_overrides(_load_spec(args.spec), overrides))
    path = train(config, args.out, data_dir=args.data_dir)
    print(f"run directory: {path}\nplot: {plot_training(path)}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from marginlab.runs.plots import plot_training
    from marginlab.training.engine import resume

    path = resume(args.run_dir, list(args.set), data_dir=args.data_dir)
    print(f"run directory: {path}\nplot: {plot_training(path)}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    width = max(len(name) for name in PRESETS)
    for name, (description, _) in PRESETS.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from marginlab.runs.plots import plot_training

    print(plot_training(args.run_dir, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marginlab",
        description="Train homogeneous networks far past float64 underflow and measure how "
        "gradient descent maximizes their margins.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train from a preset or a YAML config")
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
    run.add_argument("--device", choices=["auto", "cpu", "cuda"])
    run.add_argument("--dtype", choices=["float64", "float32"])
    run.add_argument("--seed", type=int)
    run.set_defaults(func=_cmd_run)

    resume = sub.add_parser("resume", help="continue an interrupted or finished run")
    resume.add_argument("run_dir")
    resume.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.max_epochs, train.target_log10_loss or log.* only",
    )
    resume.add_argument("--data-dir")
    resume.set_defaults(func=_cmd_resume)

    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=_cmd_presets)

    plot = sub.add_parser("plot", help="plot loss and margins of a run as PNG")
    plot.add_argument("run_dir")
    plot.add_argument("--out")
    plot.set_defaults(func=_cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginlab`` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"marginlab: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
