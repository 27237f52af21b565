"""Run one collection's watch in a background thread and hand its changes to the event loop.

Objects are converted (parsed into their compact cache value) in the thread; the sink is
called only on the loop, through `loop.call_soon_threadsafe`, so whatever it updates is
never seen half-written. A full list is collected into a new dict and handed over whole.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from webhook.sources.store import key_of
from webhook.sources.watching import (
    DELETED,
    LISTED,
    Bookmark,
    Restart,
    WatchRequests,
    infinite_watch,
)
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

STALE_AFTER_RESYNC_PERIODS = 3
DEFAULT_STALE_AFTER_SECONDS = 180.0  # used when --resync-period is 0

V = TypeVar("V")


class Sink(Protocol[V]):
    def convert(self, namespace: str, name: str, obj: JsonObject) -> V:
        """Thread side: the compact value kept for one object."""
        ...

    def begin_list(self) -> None:
        """Thread side: a full list starts."""
        ...

    def replace_all(self, entries: dict[str, V]) -> None:
        """Loop side: a full list, keyed "namespace/name"."""
        ...

    def put(self, key: str, value: V) -> None: ...

    def delete(self, key: str) -> None: ...


def object_key(obj: JsonObject) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class ResourceWatch(Generic[V]):
    """One watched collection. `run()` is the coroutine the service keeps running."""

    def __init__(
        self,
        requests: WatchRequests,
        sink: Sink[V],
        *,
        resource: str,
        resync_period: float,
        count_restart: Callable[[str, str], None],
    ) -> None:
        self.requests = requests
        self.sink = sink
        self.resource = resource
        self.resync_period = resync_period
        self._count_restart = count_restart
        self.stale_after = (
            STALE_AFTER_RESYNC_PERIODS * resync_period
            if resync_period > 0
            else DEFAULT_STALE_AFTER_SECONDS
        )
        # Loop-side state, written only through _post.
        self.listed = False
        self.failing_since: float | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- loop side ----------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._thread_main, name=f"watch-{self.resource}", daemon=True
        )
        thread.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stop.set()

    def not_ready_reason(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if not self.listed:
            reason = f"{self.resource} have not been listed yet"
            return f"{reason} (last error: {self.last_error})" if self.last_error else reason
        if self.failing_since is not None and now - self.failing_since > self.stale_after:
            return (
                f"the {self.resource} watch has been failing for {now - self.failing_since:.0f}s "
                f"(more than {self.stale_after:.0f}s): {self.last_error}"
            )
        return ""

    def _on_listed(self, entries: dict[str, V]) -> None:
        self.sink.replace_all(entries)
        self.listed = True
        if self.failing_since is not None:
            logger.info("%s watch recovered", self.resource)
        self.failing_since = None
        self.last_error = ""

    def _on_failure(self, error: str, at: float) -> None:
        if self.failing_since is None:
            self.failing_since = at
        if error != self.last_error:
            logger.warning("%s watch failed, retrying with back-off: %s", self.resource, error)
        self.last_error = error

    # -- thread side --------------------------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stop.set()
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed meanwhile: the server is shutting down
            self._stop.set()
            return False
        return True

    def _on_restart(self, reason: Restart, error: str) -> None:
        self._count_restart(self.resource, reason.value)
        if reason is Restart.ERROR:
            self._post(self._on_failure, error, time.monotonic())

    def _thread_main(self) -> None:
        try:
            self._consume()
        except Exception:  # a bug, not a cluster problem: make it visible on /readyz and in the log
            logger.exception("%s watch thread crashed", self.resource)
            self._post(
                self._on_failure,
                "watch thread crashed; see the log",
                time.monotonic() - self.stale_after - 1,
            )

    def _consume(self) -> None:
        pending: dict[str, V] = {}
        convert = self.sink.convert
        for item in infinite_watch(
            self.requests,
            resync_period=self.resync_period,
            stop=self._stop,
            on_restart=self._on_restart,
        ):
            if item is Bookmark.LISTING:
                pending = {}
                self.sink.begin_list()
            elif item is Bookmark.LISTED:
                logger.info("listed %d %s", len(pending), self.resource)
                self._post(self._on_listed, pending)
                pending = {}
            elif isinstance(item, Bookmark):
                continue
            else:
                namespace, name = object_key(item.object)
                key = key_of(namespace, name)
                if item.type == LISTED:
                    pending[key] = convert(namespace, name, item.object)
                elif item.type == DELETED:
                    self._post(self.sink.delete, key)
                else:
                    self._post(self.sink.put, key, convert(namespace, name, item.object))
