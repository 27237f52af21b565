"""Which server a uvicorn log line is about.

The webhook and the metrics server are two uvicorn servers in one process, and uvicorn logs
each one's start and stop on the same logger ("uvicorn.error") with the same words: without
this, "Started server process" and "Shutting down" appear twice with nothing telling them apart.
Each server runs in its own task (`serve_as`), whose context names it; the filter rewrites the
lines uvicorn logs from that task to name the server and where it listens
(docs/production.md, "Logs").
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import uvicorn

from webhook.server.transport.listen import describe

UVICORN_LOGGER = "uvicorn.error"
# uvicorn's own lifecycle messages, as short words after the server's name
_LIFECYCLE = {
    "Started server process [%d]": "started",
    "Shutting down": "shutting down",
    "Finished server process [%d]": "stopped",
    "Waiting for connections to close. (CTRL+C to force quit)": "waiting for connections to close",
    "Waiting for background tasks to complete. (CTRL+C to force quit)": (
        "waiting for background tasks to complete"
    ),
}

_SERVER: ContextVar[tuple[str, str] | None] = ContextVar("uvicorn_server", default=None)


class ServerNameFilter(logging.Filter):
    """Prefixes uvicorn's lines with the server they are about: "webhook server on
    https://127.0.0.1:8443: started", logger "uvicorn"; the JSON format also gets a `server` key."""

    def filter(self, record: logging.LogRecord) -> bool:
        server = _SERVER.get()
        if server is None:
            return True
        name, where = server
        word = _LIFECYCLE.get(record.msg) if isinstance(record.msg, str) else None
        record.msg = f"{name} server on {where}: {word or record.getMessage()}"
        record.args = ()
        record.name = "uvicorn"  # not "uvicorn.error": these are not errors
        record.server = name
        return True


@contextmanager
def server_names() -> Iterator[None]:
    """While serving: uvicorn's lines name their server."""
    logger = logging.getLogger(UVICORN_LOGGER)
    names = ServerNameFilter()
    logger.addFilter(names)
    try:
        yield
    finally:
        logger.removeFilter(names)


async def serve_as(
    name: str, scheme: str, server: uvicorn.Server, sockets: list[socket.socket]
) -> None:
    """`server.serve(sockets)`, its log lines naming it. Run it as its own task (asyncio.gather
    makes one per coroutine): the name is set in that task's context only."""
    _SERVER.set((name, f"{scheme}://{describe(sockets)}"))
    await server.serve(sockets=sockets)
