from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from webhook.logs import configure_logging
from webhook.server.runner import run_servers
from webhook.server.service import StartupError, WebhookService
from webhook.server.tls import build_server_context
from webhook.settings import add_mutation_arguments, add_server_arguments, settings_from_args

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the admission webhook (HTTPS) and its metrics server",
        description="Run the mutating admission webhook. Admission on https://BIND:PORT/mutate; "
        "/metrics, /healthz and /readyz on http://BIND:METRICS_PORT.",
    )
    add_mutation_arguments(parser)
    add_server_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    build_server_context(settings)  # bad TLS flags or files fail before any source is read
    service = WebhookService(settings)
    try:
        service.load_sources()
    except StartupError as exc:
        print(f"pod-identity-webhook serve: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    try:
        with runner:
            runner.run(run_servers(service))
    except OSError as exc:
        print(f"pod-identity-webhook serve: {exc}", file=sys.stderr)
        return 1
    return 0
