"""``marginlab completion bash|zsh|tcsh``: a shell completion script (made by shtab)."""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh")
# Arguments that name a directory or a file, completed as such by the shell.
DIRECTORIES = ("run_dir", "run_dirs", "data_dir", "address")
FILES = ("spec", "out")


def _completion(args: argparse.Namespace) -> int:
    import shtab

    parser = args.root_parser
    for action in _actions(parser):
        if action.dest in DIRECTORIES:
            action.complete = shtab.DIRECTORY
        elif action.dest in FILES:
            action.complete = shtab.FILE
    print(shtab.complete(parser, shell=args.shell))
    return 0


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _actions(child)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "completion",
        help="print a shell completion script for bash, zsh or tcsh",
        description='bash: eval "$(marginlab completion bash)" in ~/.bashrc; zsh: '
        "marginlab completion zsh > a folder of your $fpath, as _marginlab.",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    parser.set_defaults(func=_completion)
