"""The webhook's ASGI apps served in this process, for tests of the HTTP envelope.

`serve_in_process(*flags)` reads the same flags as `serve`, loads the sources and runs the
service's background tasks on an event loop in a thread; `client()` and `metrics_client()` are
plain httpx clients whose requests go straight to the apps through httpx's ASGI transport. No
socket, no TLS, no uvicorn: tests of those (and of signals and reloads) run the real process
(tests/support/server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp

from tests.support.polling import eventually
from webhook.assembly.webhook import AssembledWebhook, assemble
from webhook.cli import build_parser
from webhook.flags.shared import settings_from_args
from webhook.server.admission.apps import WebhookApp, build_metrics_app


class _LoopTransport(httpx.BaseTransport):
    """A sync transport that hands each request to the ASGI app on the service's loop."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._transport.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout=30)


@dataclass
class InProcessWebhook:
    service: AssembledWebhook
    loop: asyncio.AbstractEventLoop

    def client(self) -> httpx.Client:
        transport = _LoopTransport(WebhookApp(self.service), self.loop)
        return httpx.Client(transport=transport, base_url="https://webhook.test", timeout=10)

    def metrics_client(self) -> httpx.Client:
        transport = _LoopTransport(build_metrics_app(self.service), self.loop)
        return httpx.Client(transport=transport, base_url="http://metrics.test", timeout=10)

    def metrics(self, path: str) -> httpx.Response:
        """GET `path` (/metrics, /readyz, ...) from the metrics app."""
        with self.metrics_client() as client:
            return client.get(path)

    def wait_ready(self) -> None:
        if eventually(lambda: self.metrics("/readyz").status_code, 200) != 200:
            raise RuntimeError(f"webhook did not become ready: {self.metrics('/readyz').text}")


@contextlib.contextmanager
def serve_in_process(*flags: str) -> Iterator[InProcessWebhook]:
    """The service `serve *flags` would run, its background tasks started, stopped after."""
    service = assemble(settings_from_args(build_parser().parse_args(["serve", *flags])))
    service.load_sources()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="in-process webhook", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(timeout=10)
        yield InProcessWebhook(service, loop)
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
