"""The ``marginlab`` command line: one parser, subcommands from :mod:`marginlab.commands`.

:func:`main` is the one place that decides how a command ends: a user's mistake (any
:class:`marginlab.errors.UserError`, a bad argument, a file the system cannot read or
write) is one line ``marginlab: error: ...`` and exit status 2; anything else is a bug in
marginlab, reported in one line with the path of a log file that holds its traceback, and
exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from importlib import import_module
from typing import NoReturn

from marginlab.errors import UserError

COMMAND_MODULES = ("train", "plots", "robustness", "diagnose", "sweep", "reproduce")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the argument and the help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"marginlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="marginlab",
        description="Train homogeneous networks far past float64 underflow and measure how "
        "gradient descent maximizes their margins.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(f"marginlab.commands.{name}").register(sub)
    return parser


def _report_bug(error: BaseException) -> str:
    """Write the traceback of an unexpected error to a log file; return its path."""
    fd, path = tempfile.mkstemp(prefix=f"marginlab-error-{time.strftime('%Y%m%d-%H%M%S')}-")
    with os.fdopen(fd, "w", encoding="utf-8") as log:
        log.write(f"marginlab {' '.join(sys.argv[1:])}\n\n")
        log.write("".join(traceback.format_exception(error)))
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginlab`` command; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad argument (already reported)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return args.func(args)
    except UserError as error:
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file or device the system refused: named by the error
        print(f"marginlab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        path = _report_bug(error)
        summary = (str(error).strip().splitlines() or [""])[0]
        print(
            f"marginlab: internal error ({type(error).__name__}: {summary}); this is a bug in "
            f"marginlab, not in what you gave it; the traceback is in {path}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
