"""Command-line basics: version, help everywhere, every config key listed, completion."""

from __future__ import annotations

import argparse
import re

import pytest

from marginlab.cli import build_parser, main
from marginlab.config import KEY_HELP, describe_keys


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"marginlab": parser, **sub.choices}


def test_version(capsys):
    assert main(["--version"]) == 0
    assert re.fullmatch(r"marginlab \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_marginlab_alone_shows_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: marginlab")
    assert all(name in out for name in ("run", "kkt", "attack", "config", "completion"))


@pytest.mark.parametrize("name", list(_commands()))
def test_every_argument_has_help_and_says_its_default(name, capsys):
    parser = _commands()[name]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{name} {action.dest}: no help"
    formatter = parser._get_formatter()
    texts = [parser.description or ""]
    for action in parser._actions:
        shown = formatter._get_help_string(action) if action.help else ""
        texts.append(shown)
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default" in shown, f"{name} {action.dest}: the help hides its default"
    # they name the papers, never a section label of an internal summary (B7, A10; F1 is
    # the F1 norm)
    for text in texts:
        assert not re.search(r"\b(?!F1\b)[A-Z]\d+(\.\d+)?\b", text), text


def test_config_list_names_every_key_with_type_default_and_meaning(capsys):
    assert main(["config", "--list"]) == 0
    out = capsys.readouterr().out
    rows = describe_keys()
    assert {key for key, *_ in rows} == set(KEY_HELP)  # no key undocumented, none stale
    flat = " ".join(out.split())  # the meanings are wrapped
    for key, kind, default, meaning in rows:
        assert f"{key} {kind}, default {default} {meaning}" in flat
    for key in (
        "train.lr",
        "train.alpha_up",
        "train.chunk_size",
        "data.n_test",
        "data.subset",
        "log.checkpoint_every",
    ):
        assert re.search(rf"^{re.escape(key)} ", out, re.MULTILINE), key
    assert "cnn" in out and "spec=required" in out  # the model kinds and their keys


def test_config_of_a_preset_prints_every_resolved_key(capsys):
    assert main(["config", "digits-cnn", "--set", "train.max_epochs=7"]) == 0
    out = capsys.readouterr().out
    assert "max_epochs: 7" in out and "chunk_size: 4096" in out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_name_the_commands_and_options(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for word in ("marginlab", "resume", "reference", "--checkpoints", "--grid"):
        assert word in script
