"""`pod-identity-webhook` command line: one module per subcommand under webhook/commands/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.commands import certs, doctor, mutate, oidc, serve
from webhook.settings import SettingsError

SUBCOMMANDS = (serve, mutate, certs, oidc, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pod-identity-webhook",
        description="Mutating admission webhook that gives Kubernetes pods AWS IAM credentials "
        "(IRSA, EKS Pod Identity) and sends Fargate pods to the Fargate scheduler.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"pod-identity-webhook {args.command}: {exc}", file=sys.stderr)
        return 2
    return code
