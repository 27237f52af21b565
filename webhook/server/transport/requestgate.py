"""The gate every request of the bounded server passes: how many are answered at once, and how
many declared body bytes they hold (--max-concurrent-requests, --max-inflight-request-bytes;
docs/production.md, "Bounds")."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the protocol imports this module
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from webhook.server.transport.boundedprotocol import BoundedHttpToolsProtocol


class RequestGate:
    """Requests being answered at once, by count and by declared body bytes. A request that
    does not fit waits, its connection unread, until one finishes; one always runs."""

    __slots__ = ("bytes", "max_bytes", "max_requests", "requests", "waiting")

    def __init__(self, *, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self.waiting: deque[tuple[BoundedHttpToolsProtocol, RequestResponseCycle, Any, int]] = (
            deque()
        )

    def admit(self, weight: int) -> bool:
        if self.requests and (
            self.requests >= self.max_requests or self.bytes + weight > self.max_bytes
        ):
            return False
        self.requests += 1
        self.bytes += weight
        return True

    def release(self, weight: int) -> None:
        self.requests -= 1
        self.bytes -= weight
        waiting = self.waiting
        while waiting and self.admit(waiting[0][3]):
            protocol, cycle, app, weight = waiting.popleft()
            if not protocol.start_admitted(cycle, app, weight):
                self.requests -= 1
                self.bytes -= weight
