"""uvicorn's httptools protocol, with each response sent as one write, batched under load.

An ASGI response is two messages, and uvicorn writes each to the transport as it comes: the
head, then the body. Over TLS that is two encryptions, two TLS records and two send() calls
per admission. Here the head is held and goes out with the first body write, so a response
costs one of each.

Under load (other requests in flight on the server) the joined response is sent at the end of
the current event loop step instead of at once: the responses of one step leave together, the
client's next requests then arrive together, and the loop wakes up once for many requests
rather than once each. Alone, a response is sent at once, so a lone request waits for nothing.
docs/performance.md ("Where the time goes") gives the measurements of both.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class CoalescingTransport:
    """Holds the first write made while a response is being answered (its head) and sends it
    together with the next write; sends at the end of the loop step while other requests are
    in flight. `flush_head` sends a head with no body, `close` and `write_eof` send everything
    held first, `abort` drops it. Anything else goes straight to the real transport."""

    __slots__ = ("_head", "_head_of", "_out", "_protocol", "_transport")

    def __init__(self, transport: asyncio.Transport, protocol: HttpToolsProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._head: bytes | None = None  # a response head waiting for its body
        self._head_of: RequestResponseCycle | None = None  # the response it belongs to
        self._out: bytes | None = None  # bytes waiting for the end of the loop step

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._send(head + data)
            return
        cycle = self._protocol.cycle
        if (
            cycle is not None
            and cycle is not self._head_of
            and cycle.response_started
            and not cycle.response_complete
        ):
            self._head_of = cycle
            self._head = bytes(data)
            return
        self._send(data)

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        if self._out is not None:
            self._out += data  # after what is already waiting, in order
        elif len(self._protocol.tasks) > 1:  # others in flight (this request is one)
            self._out = bytes(data)
            self._protocol.loop.call_soon(self._send_out)
        else:
            self._transport.write(data)

    def _send_out(self) -> None:
        out = self._out
        if out is not None:
            self._out = None
            if not self._transport.is_closing():
                self._transport.write(out)

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def flush_head(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._send(head)

    def _flush_all(self) -> None:
        self.flush_head()
        self._send_out()

    def close(self) -> None:
        self._flush_all()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush_all()
        self._transport.write_eof()

    def abort(self) -> None:
        self._head = self._out = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = sum(len(part) for part in (self._head, self._out) if part is not None)
        return self._transport.get_write_buffer_size() + held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, self)
        # uvloop's TLS transport is not an asyncio.Transport subclass, only one in behaviour.
        super().connection_made(cast(asyncio.Transport, self._coalescing))

    def on_response_complete(self) -> None:
        # A response with no body write (HEAD) still sends its head.
        self._coalescing.flush_head()
        super().on_response_complete()
