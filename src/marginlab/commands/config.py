"""``marginlab config``: every configuration key, or the resolved configuration of a run."""

from __future__ import annotations

import argparse
import textwrap


def print_keys() -> None:
    """Every key with its type, default and meaning, then each model kind's keys."""
    from marginlab.config import describe_keys
    from marginlab.models.build import MODEL_KINDS, model_keys

    rows = describe_keys()
    width = max(len(key) for key, *_ in rows)
    for key, kind, default, meaning in rows:
        print(f"{key:<{width}}  {kind}, default {default}")
        print(textwrap.indent(textwrap.fill(meaning, 70), " " * (width + 2)))
    print("\nmodel.kind and each kind's keys (key=default):")
    for kind, (_, description) in MODEL_KINDS.items():
        keys = ", ".join(f"{key}={default}" for key, default in model_keys(kind))
        print(f"  {kind:<16} {description}")
        print(textwrap.indent(textwrap.fill(keys, 84), " " * 19))


def _config(args: argparse.Namespace) -> int:
    import yaml

    from marginlab.commands.train import load_spec
    from marginlab.config import apply_overrides, validate

    if args.list or args.spec is None:
        print_keys()
        return 0
    config = validate(apply_overrides(load_spec(args.spec), list(args.set)))
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "config",
        help="list every configuration key, or print a preset's full configuration",
        description="With --list (or no SPEC): every configuration key with its type, "
        "default and meaning, and each model kind's keys. With SPEC: the configuration a "
        "run of it would use, every key resolved (as config.yaml of the run holds it).",
    )
    parser.add_argument(
        "spec", nargs="?", help="preset name or YAML file to resolve (default: none, list keys)"
    )
    parser.add_argument("--list", action="store_true", help="list every key and exit")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value before resolving, as for run (repeatable)",
    )
    parser.set_defaults(func=_config)
