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

COMMAND_MODULES = (
    "train",
    "config",
    "plots",
    "robustness",
    "diagnose",
    "sweep",
    "reproduce",
    "completion",
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the argument and the help."""

    def error(self, message: str) -> NoReturn:
        _say(f"error: {message} (see `{self.prog} --help`)")
        self.exit(2)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default is None or action.default is False or action.default == []
        if "default" in text or quiet or action.default == argparse.SUPPRESS or action.nargs == 0:
            return text
        return f"{text} (default: %(default)s)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marginlab")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="marginlab",
        formatter_class=HelpFormatter,
        description="Train homogeneous networks far past float64 underflow and measure how "
        "gradient descent maximizes their margins.",
        epilog="`marginlab COMMAND --help` describes a command; `marginlab config --list` "
        "lists every configuration key; `marginlab completion bash|zsh` prints a shell "
        "completion script.",
    )
    parser.add_argument("--version", action="version", version=f"marginlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(f"marginlab.commands.{name}").register(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    parser.set_defaults(root_parser=parser)  # for `marginlab completion`
    return parser


def _one_line(text: str) -> str:
    """``text`` as one printable line: line breaks become spaces, other control characters
    (which a user can type into a value) their escapes."""
    return "".join(
        " " if char in "\n\r\t" else char if char.isprintable() else repr(char)[1:-1]
        for char in text
    )


def _say(text: str) -> None:
    print(f"marginlab: {_one_line(text)}", file=sys.stderr)


def _report_bug(error: BaseException) -> str:
    """Write the traceback of an unexpected error to a log file; return its path."""
    fd, path = tempfile.mkstemp(prefix=f"marginlab-error-{time.strftime('%Y%m%d-%H%M%S')}-")
    with os.fdopen(fd, "w", encoding="utf-8") as log:
        log.write(f"marginlab {' '.join(sys.argv[1:])}\n\n")
        log.write("".join(traceback.format_exception(error)))
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marginlab`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad argument (already reported)
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command is None:  # `marginlab` alone
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UserError as error:
        _say(f"error: {error}")
        return 2
    except BrokenPipeError:  # `marginlab ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a file or device the system refused: named by the error
        _say(f"error: {error}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        path = _report_bug(error)
        _say(
            f"internal error ({type(error).__name__}: {error}); this is a bug in marginlab, "
            f"not in what you gave it; the traceback is in {path}"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
