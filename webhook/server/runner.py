"""Run the HTTPS webhook server and the plain-HTTP metrics server in one event loop.

SIGTERM (or SIGINT) stops both from accepting, lets in-flight requests finish within
--shutdown-grace-period, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from webhook.server.app import WebhookApp, build_metrics_app
from webhook.server.connections import Acceptor, ensure_file_descriptors
from webhook.server.listen import describe, listening_sockets
from webhook.server.protocol import BoundedHttpToolsProtocol, Limits, RequestGate
from webhook.server.service import WebhookService
from webhook.server.tls import CertificateReloader, build_server_context
from webhook.settings import Settings

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner (two servers share one)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _WebhookServer(_Server):
    """The HTTPS server: connections accepted under --max-connections, TLS with a handshake
    deadline, and the bounded protocol (docs/production.md, "Bounds")."""

    def __init__(self, config: uvicorn.Config, settings: Settings, context: ssl.SSLContext) -> None:
        super().__init__(config)
        self._settings = settings
        self._context = context
        self.gate = RequestGate(
            max_requests=settings.max_concurrent_requests,
            max_bytes=settings.max_inflight_request_bytes,
        )
        self.limits = Limits(
            max_pipelined=settings.max_pipelined_requests,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            max_request_bytes=settings.max_request_bytes,
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            raise TypeError("the webhook server starts from bound sockets (listen.py)")
        config, s = self.config, self._settings
        if not config.loaded:
            config.load()

        def create_protocol(on_lost: Callable[[], None]) -> BoundedHttpToolsProtocol:
            return BoundedHttpToolsProtocol(
                config,
                self.server_state,
                self.lifespan.state,
                limits=self.limits,
                gate=self.gate,
                on_lost=on_lost,
            )

        acceptors = [
            Acceptor(
                sock,
                create_protocol,
                ssl_context=self._context,
                connections=self.server_state.connections,  # type: ignore[arg-type]
                max_connections=s.max_connections,
                handshake_timeout=s.tls_handshake_timeout,
                read_timeout=s.request_read_timeout,
            )
            for sock in sockets
        ]
        for acceptor in acceptors:
            acceptor.start()
        self.servers = acceptors  # type: ignore[assignment]
        self.started = True


def _config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    # uvicorn annotates this as int but hands it to asyncio.wait_for, which takes any seconds:
    # pass the exact grace period (rounding 1.5s up to 2s would overrun it).
    extra["timeout_graceful_shutdown"] = settings.shutdown_grace_period
    extra["timeout_keep_alive"] = settings.keep_alive_timeout
    return uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        **extra,
    )


async def run_servers(service: WebhookService) -> None:
    settings = service.settings
    # Loaded here, next to the reloader that remembers what was loaded: a pair that changes
    # while the sources load (a cluster list can take seconds) is then still picked up.
    context = build_server_context(settings)
    reloader = CertificateReloader(
        context,
        settings.tls_cert,
        settings.tls_key,
        on_reload=lambda ok: service.metrics.config_reloaded("tls", ok),
        on_expiry=service.metrics.certificate_expiry.set,
    )
    ensure_file_descriptors(settings.max_connections)
    metrics_address = settings.metrics_bind_address or settings.bind_address
    # Bound before anything is loaded, so a port in use fails start-up at once (docs/upstream.md:
    # an empty --bind-address is upstream's dual-stack ":PORT").
    webhook_sockets = listening_sockets(settings.bind_address, settings.port)
    metrics_sockets = listening_sockets(metrics_address, settings.metrics_port)
    webhook = _WebhookServer(
        _config(
            WebhookApp(service),
            settings,
            # One write per response (issue 9), plus the bounds. kube-apiserver calls directly:
            # no websockets, no proxy whose X-Forwarded-* headers would need reading.
            http=BoundedHttpToolsProtocol,
            ws="none",
            proxy_headers=False,
        ),
        settings,
        context,
    )
    metrics = _Server(_config(build_metrics_app(service), settings))
    servers = (webhook, metrics)

    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        logger.info(
            "received %s: finishing in-flight requests, then exiting", signal.Signals(signum).name
        )
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    if settings.service_account_lookup_grace_period >= settings.request_time_budget:
        logger.warning(
            "--service-account-lookup-grace-period=%gs is not shorter than "
            "--request-time-budget=%gs: a lookup still waiting at the budget is cut off there",
            settings.service_account_lookup_grace_period,
            settings.request_time_budget,
        )
    await service.start()
    # What is loaded by now (modules, the ServiceAccount cache) lives as long as the process:
    # move it out of the collector's generations, so the collections that request garbage
    # triggers do not walk it (issue 9: about 5% less server CPU per admission request).
    gc.freeze()
    reload_task = asyncio.create_task(reloader.watch())
    try:
        logger.info(
            "serving admission on https://%s and metrics on http://%s",
            describe(webhook_sockets),
            describe(metrics_sockets),
        )
        await asyncio.gather(
            webhook.serve(sockets=webhook_sockets), metrics.serve(sockets=metrics_sockets)
        )
        if not webhook.started or not metrics.started:
            raise OSError("a server could not start (is the port in use?); see the log above")
    finally:
        for sock in (*webhook_sockets, *metrics_sockets):
            sock.close()
        reload_task.cancel()
        await service.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
