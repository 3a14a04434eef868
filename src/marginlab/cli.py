"""The ``marginlab`` command line: one parser, subcommands from :mod:`marginlab.commands`."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from marginlab.config import ConfigError

COMMAND_MODULES = ("train", "plots", "robustness", "diagnose", "sweep", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marginlab",
        description="Train homogeneous networks far past float64 underflow and measure how "
        "gradient descent maximizes their margins.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(f"marginlab.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginlab`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError, FileNotFoundError) as error:
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    except KeyError as error:
        print(f"marginlab: error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
