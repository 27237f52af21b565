from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from webhook import __version__
from webhook.assembly.settingsmap import StartupError
from webhook.assembly.webhook import assemble
from webhook.flags.serving import add_server_arguments
from webhook.flags.settings import Settings, SettingsError
from webhook.flags.shared import add_mutation_arguments, settings_from_args, upstream_warnings
from webhook.logs import configure_logging
from webhook.server.transport.runner import run_servers
from webhook.server.transport.tls import build_server_context

logger = logging.getLogger(__name__)

# Upstream's --in-cluster=true fetched a certificate through a CertificateSigningRequest; we
# serve mounted files instead (docs/upstream.md). Said when that default meets no files.
IN_CLUSTER_HINT = (
    "; --in-cluster=true (upstream's default) requested a certificate through a "
    "CertificateSigningRequest, which this webhook replaces with a mounted certificate: mount "
    "a kubernetes.io/tls Secret and pass --in-cluster=false --tls-cert PATH --tls-key PATH, or "
    "deploy with manifests/overlays/cert-manager or manifests/overlays/selfsigned"
)


HELP = """run the admission webhook (HTTPS) and its metrics server (the default command)

Run the mutating admission webhook. Admission on https://BIND:PORT/mutate; /metrics, /healthz
and /readyz on http://BIND:METRICS_PORT. Takes every flag of upstream's /webhook (and klog's),
as --flag, -flag, --flag=value or --flag value.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_mutation_arguments(parser, serving=True)
    add_server_arguments(parser)


def _build_tls(settings: Settings) -> None:
    try:
        build_server_context(settings)
    except SettingsError as exc:
        if settings.in_cluster and exc.flag in ("--tls-cert", "--tls-key", "--tls-cert/--tls-key"):
            raise SettingsError(exc.flag, exc.value, exc.expected + IN_CLUSTER_HINT) from exc
        raise


def run(args: argparse.Namespace) -> int:
    if args.version:
        print(__version__)
        return 0
    settings = settings_from_args(args)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    for note in upstream_warnings(args):
        logger.warning("%s", note)
    _build_tls(settings)  # bad TLS flags or files fail before any source is read
    try:
        service = assemble(settings)
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
