"""The webhook's uvicorn servers on uvicorn's internals: the HTTPS server accepting under
--max-connections with the bounded protocol, and the metrics server; both leave signal handling
to the runner (two servers share one process). Built only when uvicorninternals.py finds everything
they rely on; fallbackservers.py has the fallback.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from webhook.flags.settings import Settings
from webhook.server.transport.acceptor import Acceptor
from webhook.server.transport.boundedprotocol import BoundedHttpToolsProtocol, Limits
from webhook.server.transport.fallbackservers import server_config
from webhook.server.transport.requestgate import RequestGate


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class BoundedServer(QuietServer):
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


def bounded_servers(
    webhook_app: Any, metrics_app: Any, settings: Settings, context: ssl.SSLContext
) -> tuple[uvicorn.Server, uvicorn.Server]:
    """The webhook and metrics servers, as `serve` runs them when uvicorn has what they use."""
    webhook = BoundedServer(
        server_config(
            webhook_app,
            settings,
            # One write per response, plus the bounds (docs/performance.md). kube-apiserver
            # calls directly: no websockets, no proxy whose X-Forwarded-* headers need reading.
            http=BoundedHttpToolsProtocol,
            ws="none",
            proxy_headers=False,
        ),
        settings,
        context,
    )
    return webhook, QuietServer(server_config(metrics_app, settings))
