"""One module per subcommand, named after it. Each is a `Command`: `webhook/cli.py` registers
them all the same way, from what the module declares:

- `HELP`: the --help text. Its first line is the command's line in `pod-identity-webhook --help`;
  the paragraphs after the blank line open the command's own --help.
- `add_arguments(parser)`: its flags.
- `run(args)`: runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
from typing import Protocol


class Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...
