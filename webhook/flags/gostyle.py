"""Go's flag syntax on the command line: upstream's /webhook takes `-flag` and `-flag=value`
for long flags; `serve` does too, by rewriting them to argparse's `--flag` before parsing."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def long_options(parser: argparse.ArgumentParser, command: str) -> frozenset[str]:
    """The `--long` options of subcommand `command` of `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[command]
            return frozenset(option for option in sub._option_string_actions if option[1] == "-")
    return frozenset()


def go_style(argv: Sequence[str], long_options: frozenset[str]) -> list[str]:
    """Go's flag package also takes `-flag` and `-flag=value` for long flags: make them `--`."""
    result: list[str] = []
    for arg in argv:
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and not arg.startswith("--") and "-" + name in long_options:
            arg = "-" + arg
        result.append(arg)
    return result
