"""Subcommands of the ``marginlab`` command line, one module per group.

Each module defines ``register(subparsers)``, adding its subcommands with
``set_defaults(func=...)``; a handler takes the parsed arguments and returns an exit code.
"""
