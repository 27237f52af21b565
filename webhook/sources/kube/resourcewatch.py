"""Run one collection's watch in a background thread and hand its changes to the event loop.

Objects are converted (parsed into their compact cache value) in the thread. Everything the
thread has for the loop is a message (`Listed`, `Put`, `Deleted`, `Failed`, `Crashed`) sent
through one `Handoff` (`loop.call_soon_threadsafe`) to one loop-side method, `_receive`, which
alone updates the sink and the watch's state, so neither is ever seen half-written. A full
list is collected into a new dict and handed over whole.

An object that cannot be converted is skipped (logged once, counted), never the end of the
watch. Should the thread die anyway, `run()` raises, and its supervisor starts a new one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from webhook.objectkeys import key_of
from webhook.sources.kube.handoff import Crashed, Deleted, Failed, Handoff, Listed, Message, Put
from webhook.sources.kube.watching import (
    DELETED,
    LISTED,
    Bookmark,
    Event,
    Restart,
    WatchRequests,
    infinite_watch,
)
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

STALE_AFTER_RESYNC_PERIODS = 3
DEFAULT_STALE_AFTER_SECONDS = 180.0  # used when --resync-period is 0
# Keys of skipped objects remembered so each is logged once; forgotten all at once past this.
MAX_REMEMBERED_SKIPS = 10_000


class WatchThreadCrashed(RuntimeError):
    """The watch thread died of an unexpected exception (a bug); the message names it."""


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

    def put(self, key: str, value: V) -> None:
        """Loop side: one object added or changed."""
        ...

    def delete(self, key: str) -> None:
        """Loop side: one object gone (or unreadable: no identity rather than a stale one)."""
        ...


def object_key(obj: JsonObject) -> tuple[str, str]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return "", ""
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class ResourceWatch(Generic[V]):
    """One watched collection. `run()` is the coroutine `serve` keeps running (webhook/assembly/background.py)."""

    def __init__(
        self,
        requests: WatchRequests,
        sink: Sink[V],
        *,
        resource: str,
        resync_period: float,
        count_restart: Callable[[str, str], None],
        count_skip: Callable[[str], None] = lambda resource: None,
    ) -> None:
        self.requests = requests
        self.sink = sink
        self.resource = resource
        self.name = f"{resource} watch"
        self.resync_period = resync_period
        self._count_restart = count_restart
        self._count_skip = count_skip
        self._skips_logged: set[str] = set()  # thread side
        self.stale_after = (
            STALE_AFTER_RESYNC_PERIODS * resync_period
            if resync_period > 0
            else DEFAULT_STALE_AFTER_SECONDS
        )
        # Loop side, written only by _receive.
        self.listed = False
        self.failing_since: float | None = None
        self.last_error = ""

    # -- loop side ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until cancelled; raises WatchThreadCrashed when the thread dies."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        crashed: asyncio.Future[str] = loop.create_future()
        hand_off: Handoff[V] = Handoff(loop, functools.partial(self._receive, crashed), stop)
        thread = threading.Thread(
            target=self._thread_main,
            args=(stop, hand_off),
            name=f"watch-{self.resource}",
            daemon=True,
        )
        thread.start()
        try:
            error = await crashed
        finally:
            stop.set()
        raise WatchThreadCrashed(f"{self.resource} watch thread crashed: {error}")

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

    def _receive(self, crashed: asyncio.Future[str], message: Message[V]) -> None:
        """Where every message from the thread lands: the only writer of the sink and state."""
        if isinstance(message, Put):
            self.sink.put(message.key, message.value)
        elif isinstance(message, Deleted):
            self.sink.delete(message.key)
        elif isinstance(message, Listed):
            self.sink.replace_all(message.entries)
            self.listed = True
            if self.failing_since is not None:
                logger.info("%s watch recovered", self.resource)
            self.failing_since = None
            self.last_error = ""
        elif isinstance(message, Failed):
            self._failing(message.error, message.at)
        else:
            self._failing("watch thread crashed; see the log", message.at)
            if not crashed.done():
                crashed.set_result(message.error)

    def _failing(self, error: str, at: float) -> None:
        if self.failing_since is None:
            self.failing_since = at
        self.last_error = error

    # -- thread side --------------------------------------------------------------------------

    def _thread_main(self, stop: threading.Event, hand_off: Handoff[V]) -> None:
        try:
            self._consume(stop, hand_off)
        except Exception as exc:  # a bug, not a cluster problem: visible in the log and on /readyz
            logger.exception("%s watch thread crashed", self.resource)
            hand_off(Crashed(f"{type(exc).__name__}: {exc}", time.monotonic()))

    def _consume(self, stop: threading.Event, hand_off: Handoff[V]) -> None:
        def on_restart(reason: Restart, error: str, delay: float) -> None:
            self._count_restart(self.resource, reason.value)
            if reason is Restart.ERROR:
                hand_off(Failed(error, time.monotonic()))
                logger.warning(
                    "%s watch failed: %s; retrying in %.1fs", self.resource, error, delay
                )
            else:
                logger.info(
                    "%s watch: %s; listing again in %.1fs",
                    self.resource,
                    "resourceVersion expired"
                    if reason is Restart.EXPIRED
                    else "watch ended at once",
                    delay,
                )

        pending: dict[str, V] = {}
        for item in infinite_watch(self.requests, stop=stop, on_restart=on_restart):
            if item is Bookmark.LISTING:
                pending = {}
                self.sink.begin_list()
            elif item is Bookmark.LISTED:
                logger.info("listed %d %s", len(pending), self.resource)
                hand_off(Listed(pending))
                pending = {}
            elif isinstance(item, Event):
                message = self._convert(item, pending)
                if message is not None:
                    hand_off(message)

    def _convert(self, item: Event, pending: dict[str, V]) -> Put[V] | Deleted | None:
        """One object: into the pending list or a message for the loop; skipped if unreadable."""
        namespace, name = object_key(item.object)
        key = key_of(namespace, name)
        if item.type == DELETED:
            return Deleted(key)
        try:
            if not name:
                raise ValueError("metadata.name is missing")
            value = self.sink.convert(namespace, name, item.object)
        except Exception as exc:  # one bad object must not stop the watch
            self._skip(key, exc)
            # no identity rather than a stale one
            return None if item.type == LISTED else Deleted(key)
        if item.type == LISTED:
            pending[key] = value
            return None
        return Put(key, value)

    def _skip(self, key: str, exc: Exception) -> None:
        self._count_skip(self.resource)
        if key in self._skips_logged:
            return
        if len(self._skips_logged) >= MAX_REMEMBERED_SKIPS:
            self._skips_logged.clear()
        self._skips_logged.add(key)
        # The exception's type and where it was raised, not its message: that may quote
        # an annotation value, which is never logged.
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        logger.error(
            "%s %s skipped: cannot read it (%s%s); logged once",
            self.resource,
            key,
            type(exc).__name__,
            where,
        )
