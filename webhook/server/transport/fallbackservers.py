"""uvicorn's configuration for both servers, and the fallback servers built on uvicorn's public
API alone (Config, Server, serve), for a uvicorn that lacks the internals the bounded server
relies on (uvicorninternals.py; docs/performance.md, "uvicorn's internals").
"""

from __future__ import annotations

import ssl
from typing import Any

import uvicorn

from webhook.flags.settings import Settings

# Said once at start-up when the bounded server cannot be built.
FALLBACK_WARNING = (
    "this uvicorn lacks what the webhook's own HTTP protocol and server use (%s): serving with "
    "uvicorn's own protocol and server instead. Kept: TLS and its reload, --keep-alive-timeout, "
    "--shutdown-grace-period, --max-request-bytes and --request-time-budget, and "
    "--max-connections as uvicorn's concurrency limit (503 past it). Lost: one write per "
    "response, connections refused at accept past --max-connections, --tls-handshake-timeout "
    "(asyncio's 60s applies), --request-read-timeout, --max-header-bytes and "
    "--max-header-count (only uvicorn's h11 takes a head limit: --max-header-bytes), "
    "--max-pipelined-requests, "
    "--max-concurrent-requests, --max-inflight-request-bytes, the small TLS buffers and the 2s "
    "wait for a client's TLS close (asyncio's 30s applies, within --shutdown-grace-period), "
    "and at shutdown the 5s a just-accepted connection gets to send its first request. "
    "Install the uvicorn version pyproject.toml names (requirements.lock pins it)"
)


def server_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
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


def fallback_servers(
    webhook_app: Any, metrics_app: Any, settings: Settings, context: ssl.SSLContext
) -> tuple[uvicorn.Server, uvicorn.Server]:
    """The webhook and metrics servers on uvicorn's own protocol and server path."""
    webhook = uvicorn.Server(
        server_config(
            webhook_app,
            settings,
            ws="none",
            proxy_headers=False,
            # the reloader's live context, so certificate rotation keeps working
            ssl_context_factory=lambda _config, _default: context,
            limit_concurrency=settings.max_connections,
            h11_max_incomplete_event_size=settings.max_header_bytes,
        )
    )
    return webhook, uvicorn.Server(server_config(metrics_app, settings))
