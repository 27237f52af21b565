"""Run the HTTPS webhook server and the plain-HTTP metrics server in one event loop.

SIGTERM (or SIGINT) stops both from accepting, lets in-flight requests finish within
--shutdown-grace-period, then exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections.abc import Sequence
from typing import Any

import uvicorn

from webhook.server.admission.apps import Served, WebhookApp, build_metrics_app
from webhook.server.transport.acceptor import ensure_file_descriptors
from webhook.server.transport.fallbackservers import FALLBACK_WARNING, fallback_servers
from webhook.server.transport.listen import describe, listening_sockets
from webhook.server.transport.serverlogs import serve_as, server_names
from webhook.server.transport.tls import CertificateReloader, build_server_context
from webhook.server.transport.uvicorninternals import missing_internals

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often the fallback checks whether both servers have started (_take_back_signals).
STARTED_POLL_SECONDS = 0.01


def _build_servers(
    served: Served, context: ssl.SSLContext, missing: Sequence[str]
) -> tuple[uvicorn.Server, uvicorn.Server]:
    apps = (WebhookApp(served), build_metrics_app(served))
    if missing:
        logger.warning(FALLBACK_WARNING, ", ".join(missing))
        return fallback_servers(*apps, served.settings, context)
    # Imported only now: these modules subclass the internals just found to be there.
    from webhook.server.transport.boundedservers import bounded_servers

    return bounded_servers(*apps, served.settings, context)


def _handle_stop_signals(
    loop: asyncio.AbstractEventLoop, servers: tuple[uvicorn.Server, ...]
) -> None:
    def stop(signum: int) -> None:
        logger.info(
            "received %s: finishing in-flight requests, then exiting", signal.Signals(signum).name
        )
        for server in servers:
            server.should_exit = True

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)


async def run_servers(served: Served, *, missing: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT. `missing`: the uvicorn internals to take as absent,
    which selects uvicorn's own protocol and server (None: check the installed uvicorn)."""
    settings = served.settings
    # Loaded here, next to the reloader that remembers what was loaded: a pair that changes
    # while the sources load (a cluster list can take seconds) is then still picked up.
    context = build_server_context(settings)
    reloader = CertificateReloader(
        context,
        settings.tls_cert,
        settings.tls_key,
        on_reload=lambda ok: served.metrics.config_reloaded("tls", ok),
        on_expiry=served.metrics.certificate_expiry.set,
    )
    ensure_file_descriptors(settings.max_connections)
    metrics_address = settings.metrics_bind_address or settings.bind_address
    # Bound before anything is loaded, so a port in use fails start-up at once (docs/upstream.md:
    # an empty --bind-address is upstream's dual-stack ":PORT").
    webhook_sockets = listening_sockets(settings.bind_address, settings.port)
    metrics_sockets = listening_sockets(metrics_address, settings.metrics_port)
    missing = missing_internals() if missing is None else missing
    webhook, metrics = servers = _build_servers(served, context, missing)

    loop = asyncio.get_running_loop()
    _handle_stop_signals(loop, servers)
    if settings.service_account_lookup_grace_period >= settings.request_time_budget:
        logger.warning(
            "--service-account-lookup-grace-period=%gs is not shorter than "
            "--request-time-budget=%gs: a lookup still waiting at the budget is cut off there",
            settings.service_account_lookup_grace_period,
            settings.request_time_budget,
        )
    await served.start()
    # What is loaded by now (modules, the ServiceAccount cache) lives as long as the process:
    # move it out of the collector's generations, so the collections that request garbage
    # triggers do not walk it (docs/performance.md: about 5% less server CPU per request).
    gc.freeze()
    reload_task = asyncio.create_task(reloader.watch())
    try:
        logger.info(
            "serving admission on https://%s and metrics on http://%s",
            describe(webhook_sockets),
            describe(metrics_sockets),
        )
        with server_names():  # uvicorn's lines say which of the two servers they are about
            serving = asyncio.gather(
                serve_as("webhook", "https", webhook, webhook_sockets),
                serve_as("metrics", "http", metrics, metrics_sockets),
            )
            if missing:
                await _take_back_signals(loop, servers, serving)
            await serving
        if not webhook.started or not metrics.started:
            raise OSError("a server could not start (is the port in use?); see the log above")
    finally:
        for sock in (*webhook_sockets, *metrics_sockets):
            sock.close()
        reload_task.cancel()
        await served.stop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _take_back_signals(
    loop: asyncio.AbstractEventLoop,
    servers: tuple[uvicorn.Server, ...],
    serving: asyncio.Future[Any],
) -> None:
    """uvicorn's own server sets a signal handler per server as it starts, then restores the one
    before and raises the signal again as it stops: with two servers, one SIGTERM would go round
    three times. Once both have started, the runner's handler is set again, and it alone runs."""
    while not serving.done() and not all(server.started for server in servers):
        await asyncio.sleep(STARTED_POLL_SECONDS)
    if not serving.done():
        _handle_stop_signals(loop, servers)
