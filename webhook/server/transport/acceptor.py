"""Accepting webhook connections under a cap, with TLS handshake and request-read deadlines.

asyncio's server wraps every accepted socket in TLS at once, and a socket that never sends a
byte then costs ~50 KB until it goes (docs/production.md, "Bounds"). Here the listening socket
is read by hand: past --max-connections a new connection is closed at accept, before any TLS;
under it, the socket gets TLS with --tls-handshake-timeout; once connected, a periodic sweep
closes connections that have not sent a complete request within --request-read-timeout.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if (
    TYPE_CHECKING
):  # imported by boundedservers.py only, once uvicorninternals.py found uvicorn's parts
    from webhook.server.transport.boundedprotocol import BoundedHttpToolsProtocol

logger = logging.getLogger(__name__)

ACCEPT_BATCH = 64  # connections taken per wake-up of the listening socket, others wait their turn
ACCEPT_PAUSE_SECONDS = 0.1  # out of file descriptors: stop accepting for this long
REFUSED_LOG_INTERVAL_SECONDS = 10.0  # at most one line per interval about refused connections
# The kernel's receive buffer of a webhook connection (Linux doubles it for its bookkeeping):
# every socket read lands in uvloop's per-connection 256 KiB TLS buffer, and a read can be no
# larger than this, so under a flood each connection touches ~32 KiB of it instead of 256 KiB.
RECEIVE_BUFFER_BYTES = 16 * 1024
# How long a closing connection waits for the client's TLS close_notify (uvloop's default: 30s).
TLS_SHUTDOWN_SECONDS = 2.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


# File descriptors besides the webhook's connections: listening sockets, the metrics port's
# connections, the API server watch, watched files, the interpreter's own.
SPARE_FILE_DESCRIPTORS = 128


def ensure_file_descriptors(max_connections: int) -> None:
    """Raise the soft RLIMIT_NOFILE to what --max-connections needs, if the hard one allows;
    warn when it does not (connections past the limit then fail at accept, not at the cap)."""
    needed = max_connections + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        logger.warning(
            "--max-connections=%d needs %d file descriptors, but the limit is %d: raise the "
            "container's nofile limit or lower --max-connections",
            max_connections,
            needed,
            target,
        )


class Acceptor:
    """Serves one bound listening socket; uvicorn's Server keeps it in `servers` and calls
    `close` and `wait_closed` on shutdown, as it would for an asyncio server."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[Callable[[], None]], BoundedHttpToolsProtocol],
        *,
        ssl_context: ssl.SSLContext,
        connections: set[object],
        max_connections: int,
        handshake_timeout: float,
        read_timeout: float,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._connections = connections  # uvicorn's: the protocols past their handshake
        self.max_connections = max_connections
        self._handshake_timeout = handshake_timeout
        self._read_timeout = read_timeout
        self._loop = asyncio.get_running_loop()
        self.open = 0  # accepted and not yet closed, handshakes included
        self.refused = 0
        self._refused_logged = 0
        self._refused_log_at = 0.0
        self._handshakes: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        # Set on the listener, so accepted sockets start with it and the TCP window is sized
        # for it from the handshake on (set on an open connection it stalls large bodies).
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self._sock.setblocking(False)
        self._loop.add_reader(self._sock.fileno(), self._accept)
        self._sweep = self._loop.call_later(self._sweep_interval(), self._close_stale)

    def _sweep_interval(self) -> float:
        return min(1.0, self._read_timeout / 10)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._sweep is not None:
            self._sweep.cancel()
        # Handshakes under way finish (within --tls-handshake-timeout): a client whose side of
        # the handshake is done has already sent its request, and cutting it off now would
        # drop that request unanswered. _connect tells such a connection to shut down.

    async def wait_closed(self) -> None:
        """Until every connection this accepted is gone: uvicorn bounds the wait by
        --shutdown-grace-period, and one whose handshake ended after shutdown began is not
        among the connections uvicorn itself waits for."""
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)
        while self.open:
            await asyncio.sleep(0.05)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    logger.warning("cannot accept a connection (%s); pausing accept briefly", exc)
                    self._loop.remove_reader(self._sock.fileno())
                    self._loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume_accept)
                    return
                continue  # the client went away before accept (ECONNABORTED, ...)
            if self.open >= self.max_connections:
                conn.close()
                self._count_refused()
                continue
            self.open += 1
            task = self._loop.create_task(self._connect(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _resume_accept(self) -> None:
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _release(self) -> None:
        self.open -= 1

    def _count_refused(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now >= self._refused_log_at:
            logger.warning(
                "--max-connections=%d connections are open: refused %d new connection(s) at accept",
                self.max_connections,
                self.refused - self._refused_logged,
            )
            self._refused_logged = self.refused
            self._refused_log_at = now + REFUSED_LOG_INTERVAL_SECONDS

    async def _connect(self, conn: socket.socket) -> None:
        made: list[BoundedHttpToolsProtocol] = []

        def factory() -> BoundedHttpToolsProtocol:
            protocol = self._factory(self._release)
            made.append(protocol)
            return protocol

        try:
            await self._loop.connect_accepted_socket(
                factory,
                conn,
                ssl=self._ssl,
                ssl_handshake_timeout=self._handshake_timeout,
                ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS,
            )
            if self._closed:  # shutting down: its first request is answered, then it closes
                made[0].shutdown()
        except BaseException as exc:
            # Handshake failed, timed out or was cancelled: the protocol never saw the
            # connection, so its slot is given back here (release_slot runs at most once).
            if made and made[0].transport is None:
                made[0].release_slot()
            elif not made:
                conn.close()
                self._release()
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
            logger.debug("TLS handshake did not complete: %s", exc)

    def _close_stale(self) -> None:
        """Close connections whose request (or first request) is not complete in time."""
        now = self._loop.time()
        limit = now - self._read_timeout
        for protocol in list(self._connections):
            since = getattr(protocol, "reading_since", None)
            if since is not None and since <= limit:
                # abort, not close: no TLS goodbye to wait for from a client that stalls
                protocol.transport.abort()  # type: ignore[attr-defined]
        if not self._closed:
            self._sweep = self._loop.call_later(self._sweep_interval(), self._close_stale)
