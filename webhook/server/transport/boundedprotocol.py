"""The webhook's HTTP protocol: one write per response (coalescingprotocol.py) plus bounds on what one
client controls: the size of a request's head (431), requests read ahead on a connection
(pipelining), requests answered at once across the server (the gate), and the time to send a
complete request (checked by the acceptor's sweep, acceptor.py). docs/production.md,
"Bounds", gives the caps and the memory arithmetic behind them.

It subclasses uvicorn's httptools protocol and overrides parts of it: uvicorninternals.py names what
it relies on, and the server is built on it only when all of that is there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from webhook.server.transport.coalescingprotocol import CoalescingHttpToolsProtocol
from webhook.server.transport.requestgate import RequestGate

# How far TLS decrypts ahead of the HTTP parser on one connection (uvloop's default: 256 KiB);
# above the largest TLS record (16 KiB plus overhead), or a partial record would never complete.
# And how much of the answers a client has not read yet is kept (uvloop's default: 512 KiB).
READ_AHEAD_BYTES = 32 * 1024
WRITE_BEHIND_BYTES = 64 * 1024
# At shutdown, a connection that has not sent its first request yet is left open this long for
# it, as Go's http.Server.Shutdown does (a new connection counts as idle only after 5 s): the
# client has almost surely sent it already, and closing now would drop it unanswered.
NEW_CONNECTION_SHUTDOWN_SECONDS = 5.0


class HeadTooLarge(Exception):
    """A request line and headers over --max-header-bytes or --max-header-count (431)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection caps (docs/production.md, "Bounds")."""

    max_pipelined: int
    max_header_bytes: int
    max_header_count: int
    max_request_bytes: int  # the weight of a body of unknown length


class _BoundedFlow(FlowControl):
    """uvicorn resumes reading whenever a request asks for its body; past the pipelining cap,
    or while a request waits at the gate, the connection stays unread."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedHttpToolsProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def resume_reading(self) -> None:
        protocol = self._protocol
        if protocol.held:
            return
        latest = protocol.cycle
        if (
            latest is None
            or latest.more_body  # the latest request is not complete: read the rest of it
            or latest.response_complete  # nothing is being answered
            or len(protocol.pipeline) < protocol.limits.max_pipelined
        ):
            super().resume_reading()


class BoundedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """The webhook's protocol: coalesced writes plus bounds on what one client controls:
    header bytes and count (431), requests read ahead (pipelining), requests answered at once
    (the gate), and the time to send a complete request (`reading_since`, checked by the
    acceptor's sweep)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: Limits,
        gate: RequestGate,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.gate = gate
        self.held = False  # a request waits at the gate
        self.reading_since: float | None = None  # a request (or the first) is not complete yet
        self._on_lost = on_lost
        self._head_bytes = 0
        self._head_count = 0
        self._in_head = False
        self._head_events = 0
        self._weight = 0
        self._requests = 0  # requests begun on this connection
        self._shutting_down = False

    def release_slot(self) -> None:
        """Give back this connection's place under --max-connections (once)."""
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _BoundedFlow(cast(asyncio.Transport, self._coalescing), self)
        self.reading_since = self.loop.time()
        with contextlib.suppress(AttributeError, NotImplementedError):
            # TLS buffers per connection (uvloop's defaults: 256 KiB in, 512 KiB out): decrypt
            # little ahead of the parser, and stop answering a client that does not read.
            transport.set_read_buffer_limits(high=READ_AHEAD_BYTES)  # type: ignore[attr-defined]
            transport.set_write_buffer_limits(high=WRITE_BEHIND_BYTES)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.reading_since = None
        self.release_slot()

    def data_received(self, data: bytes) -> None:
        # uvicorn's, with 431 for a head over the limits; a header value arriving in pieces is
        # buffered by the parser, so bytes fed with no complete header count too.
        self._unset_keepalive_if_required()
        events = self._head_events
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse_head(str(exc.__context__))
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        if self._in_head and events == self._head_events:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head(self._bytes_message())

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _bytes_message(self) -> str:
        return (
            f"request line and headers are over the limit of {self.limits.max_header_bytes} bytes"
        )

    def _refuse_head(self, message: str) -> None:
        self.logger.warning("refused a request: %s", message)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is on its way: no room for another
            return
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()

    def shutdown(self) -> None:
        if self._requests == 0 and not self.transport.is_closing():
            # answered with Connection: close if it comes (on_headers_complete)
            self._shutting_down = True
            self.loop.call_later(NEW_CONNECTION_SHUTDOWN_SECONDS, self._close_if_idle)
            return
        super().shutdown()

    def _close_if_idle(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._requests += 1
        self._in_head = True
        self._head_bytes = self._head_count = 0
        self._head_events += 1
        if self.reading_since is None:
            self.reading_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._head_events += 1
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_header_bytes:
            raise HeadTooLarge(self._bytes_message())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_events += 1
        self._head_bytes += len(name) + len(value) + 4
        self._head_count += 1
        limits = self.limits
        if self._head_bytes > limits.max_header_bytes:
            raise HeadTooLarge(self._bytes_message())
        if self._head_count > limits.max_header_count:
            raise HeadTooLarge(f"more than {limits.max_header_count} request headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        weight = 0
        for name, value in self.headers:
            if name == b"content-length":
                weight = int(value) if value.isdigit() else self.limits.max_request_bytes
                break
            if name == b"transfer-encoding":
                weight = self.limits.max_request_bytes
        self._weight = min(weight, self.limits.max_request_bytes)
        super().on_headers_complete()
        self.cycle.webhook_weight = self._weight  # type: ignore[attr-defined]
        if self._shutting_down:
            self.cycle.keep_alive = False
        if self.pipeline and len(self.pipeline) >= self.limits.max_pipelined:
            self.flow.pause_reading()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_since = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        weight: int = getattr(cycle, "webhook_weight", self._weight)
        if self.gate.admit(weight):
            self._start_counted(cycle, app, weight)
            return
        self.held = True
        self.flow.pause_reading()
        self.gate.waiting.append((self, cycle, app, weight))

    def start_admitted(self, cycle: RequestResponseCycle, app: Any, weight: int) -> bool:
        """Called by the gate once a held request has its slot; False if it is gone."""
        self.held = False
        if self.transport.is_closing():
            return False
        self._start_counted(cycle, app, weight)
        self.flow.resume_reading()
        return True

    def _start_counted(self, cycle: RequestResponseCycle, app: Any, weight: int) -> None:
        # uvicorn's _start_asgi_task (we do not use reset_contextvars), plus the gate's release
        tasks, gate = self.tasks, self.gate

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            gate.release(weight)

        task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(done)
        tasks.add(task)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.flow.resume_reading()  # the pipeline has one less now
