"""`pod-identity-webhook` command line: one module per subcommand under webhook/commands/.

Without a subcommand it is upstream's `/webhook`: the arguments are `serve`'s flags, so a
container that runs `/webhook --in-cluster=false --port=443 ...` starts the server unchanged.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from webhook import __version__
from webhook.commands import Command, certs, doctor, mutate, oidc, serve, sts
from webhook.flags.gostyle import go_style, long_options
from webhook.flags.settings import SettingsError

COMMANDS: dict[str, Command] = {
    "serve": serve,
    "mutate": mutate,
    "certs": certs,
    "oidc": oidc,
    "doctor": doctor,
    "sts": sts,
}
_TOP_LEVEL_ONLY = ("-h", "--help")


# argparse words its messages "argument --flag: ..."; the flag alone reads better
_ARGUMENT_PREFIX = re.compile(r"^argument ([^:]+): ")


class CommandParser(argparse.ArgumentParser):
    """Reports a bad command line in two lines, the error and where the flags are described,
    instead of argparse's usage: serve's usage alone is some 60 lines, and the error came last.
    Exit code 2, as argparse's."""

    def error(self, message: str) -> NoReturn:
        message = _ARGUMENT_PREFIX.sub(r"\1: ", message)
        self.exit(
            2, f"{self.prog}: {message}\nRun '{self.prog} --help' for every flag and its form.\n"
        )


def build_parser() -> argparse.ArgumentParser:
    # subparsers are made of the parent's class, so every subcommand reports the same way
    parser = CommandParser(
        prog="pod-identity-webhook",
        description="Mutating admission webhook that gives Kubernetes pods AWS IAM credentials "
        "(IRSA, EKS Pod Identity) and sends Fargate pods to the Fargate scheduler. "
        "Without a COMMAND, the arguments are serve's flags, as upstream's /webhook takes them.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        summary, _, description = command.HELP.partition("\n\n")
        subparser = subparsers.add_parser(name, help=summary, description=description or summary)
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*COMMANDS, *_TOP_LEVEL_ONLY, "--version"):
        args_list.insert(0, "serve")
    if args_list[0] == "serve":
        args_list[1:] = go_style(args_list[1:], long_options(parser, "serve"))
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"pod-identity-webhook {args.command}: {exc}", file=sys.stderr)
        return 2
    return code
