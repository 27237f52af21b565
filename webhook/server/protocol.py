"""uvicorn's httptools protocol, with each response sent as one write.

An ASGI response is two messages, and uvicorn writes each to the transport as it comes: the
head, then the body. Over TLS that is two encryptions, two TLS records and two send() calls
per admission. Here the writes made while a request is being answered are held and sent
together at the end of the current event loop step, so a response costs one of each
(issue 9 measures the saving).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Holds writes made in one event loop step and sends them as one; anything else goes to
    the real transport, after what is held (so a close never drops a response)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        held = self._held
        if not held:
            self._loop.call_soon(self.flush)
        held.append(data)

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(bytes(chunk))

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(chunk) for chunk in self._held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvloop's TLS transport is not an asyncio.Transport subclass, only one in behaviour.
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))
