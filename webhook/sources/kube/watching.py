"""List-then-watch of one Kubernetes collection, in three layers (as kopf's watching.py).

- `infinite_watch` restarts `continuous_watch` forever, waiting a back-off before each restart;
- `continuous_watch` lists (page by page), then watches from the list's resourceVersion, and
  returns to force a re-list on 410 Gone or when a watch ends right after it started;
- the requests themselves (`WatchRequests`, built in kubeapi.py) know nothing of this.

The back-off is client-go's reflector's: it applies to every restart whatever the reason, and
starts over only once a watch has lived a while, so a watch that breaks right after connecting
cannot turn into a LIST storm (docs/cluster.md, "Back-off").

These run in a background thread (the kubernetes client is synchronous). Nothing here
touches the cache: callers consume the yielded events and hand them to the event loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from webhook.sources.kube.client import KubeApiError, Page, ResourceExpired
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

# client-go's reflector: NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)
BACKOFF_INITIAL_SECONDS = 0.8
BACKOFF_MAX_SECONDS = 30.0
BACKOFF_RESET_SECONDS = 120.0
# A watch ends itself after a random 5 to 10 minutes, as client-go's do.
MIN_WATCH_SECONDS = 300
# client-go's "very short watch": ended this soon with no event, it counts as a failure.
SHORT_WATCH_SECONDS = 1.0


class WatchRequests(Protocol):
    what: str

    def list_page(self, continue_token: str | None) -> Page: ...

    def watch(self, resource_version: str, *, timeout_seconds: int) -> Iterator[JsonObject]: ...


class WatchError(Exception):
    """The list or watch failed in a way a retry after a back-off may fix."""


class Bookmark(Enum):
    LISTING = "listing"  # a full list starts: collect the objects that follow
    LISTED = "listed"  # the full list is complete: swap it in


class Restart(Enum):
    EXPIRED = "expired"  # 410 Gone
    CLOSED = "closed"  # the watch ended at once with no event
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Event:
    """`type` is LISTED for an object of a full list, else the watch event type."""

    type: str
    object: JsonObject


LISTED = "LISTED"
ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
_CHANGES = frozenset((ADDED, MODIFIED, DELETED))


def _resource_version(obj: JsonObject) -> str:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        return str(metadata.get("resourceVersion") or "")
    return ""


def continuous_watch(
    requests: WatchRequests,
    *,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> Iterator[Event | Bookmark | Restart]:
    """List, then watch; yields a final Restart saying why it stopped (never raises 410).

    The caller logs each restart (with its wait); the details here are debug lines.

    A watch that ends normally (its timeout) is followed by the next one from the last
    resourceVersion, with no list: only 410 or a failure costs the API server a LIST.
    A 410 comes three ways (an expired continue token, an expired resourceVersion, an ERROR
    event in the stream) and is handled here, in one place.
    """
    rng = rng or random.Random()
    try:
        resource_version = yield from _list_all(requests)
        while not stop.is_set():
            timeout = round(MIN_WATCH_SECONDS * (1 + rng.random()))
            started = clock()
            resource_version, events = yield from _watch_from(
                requests, resource_version, timeout_seconds=timeout, stop=stop
            )
            if not events and clock() - started < SHORT_WATCH_SECONDS and not stop.is_set():
                logger.debug("%s: watch ended at once with no event; listing again", requests.what)
                yield Restart.CLOSED
                return
    except ResourceExpired as exc:
        logger.debug("%s: %s; listing again", requests.what, exc)
        yield Restart.EXPIRED
    except KubeApiError as exc:
        raise WatchError(str(exc)) from exc


def _list_all(requests: WatchRequests) -> Generator[Event | Bookmark, None, str]:
    """Every page of the list; returns the list's resourceVersion."""
    yield Bookmark.LISTING
    continue_token: str | None = None
    while True:
        page = requests.list_page(continue_token)
        for obj in page.items:
            yield Event(LISTED, obj)
        if not page.continue_token:
            break
        continue_token = page.continue_token
    yield Bookmark.LISTED
    return page.resource_version


def _watch_from(
    requests: WatchRequests, resource_version: str, *, timeout_seconds: int, stop: threading.Event
) -> Generator[Event, None, tuple[str, int]]:
    """One watch request's changes; returns (the latest resourceVersion, events received)."""
    events = 0
    for raw in requests.watch(resource_version, timeout_seconds=timeout_seconds):
        events += 1
        kind = raw.get("type")
        body = raw.get("object")
        if not isinstance(body, dict):
            logger.warning("%s: watch event %r without an object; skipped", requests.what, kind)
            continue
        if kind == "ERROR":
            code = body.get("code")
            message = body.get("message") or body.get("reason") or ""
            if code == 410:
                raise ResourceExpired(
                    f"resourceVersion {resource_version} expired ({message})", status=410
                )
            raise WatchError(f"{requests.what}: watch error {code}: {message}")
        resource_version = _resource_version(body) or resource_version
        if kind == "BOOKMARK":
            continue
        if kind in _CHANGES:
            yield Event(kind, body)
        else:
            logger.warning("%s: unknown watch event type %r; skipped", requests.what, kind)
        if stop.is_set():
            break
    return resource_version, events


class Backoff:
    """Exponential back-off with jitter and a cap, as client-go's ExponentialBackoffManager.

    Each delay is the previous one doubled, times a random factor in [1, 2), at most `maximum`.
    It starts over from `initial` only when more than `reset_after` seconds passed since the
    previous delay was taken, i.e. after the attempt in between lived that long.
    """

    def __init__(
        self,
        initial: float = BACKOFF_INITIAL_SECONDS,
        maximum: float = BACKOFF_MAX_SECONDS,
        *,
        reset_after: float = BACKOFF_RESET_SECONDS,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self._step = initial
        self._last: float | None = None
        self._rng = rng or random.Random()
        self._clock = clock

    def next(self) -> float:
        now = self._clock()
        if self._last is not None and now - self._last > self.reset_after:
            self._step = self.initial
        self._last = now
        delay = self._step
        self._step = min(self._step * 2, self.maximum)
        return min(delay * (1 + self._rng.random()), self.maximum)


RestartHook = Callable[[Restart, str, float], None]  # (reason, error, seconds until the restart)


def infinite_watch(
    requests: WatchRequests,
    *,
    stop: threading.Event,
    on_restart: RestartHook,
    backoff: Backoff | None = None,
    _iterations: int | None = None,
) -> Iterator[Event | Bookmark]:
    """Keep the collection watched until `stop` is set, backing off before every restart."""
    backoff = backoff or Backoff()
    iterations = 0
    while not stop.is_set() and (_iterations is None or iterations < _iterations):
        iterations += 1
        reason, error = Restart.CLOSED, ""
        try:
            for item in continuous_watch(requests, stop=stop):
                if isinstance(item, Restart):
                    reason = item
                    break
                yield item
        except WatchError as exc:
            reason, error = Restart.ERROR, str(exc)
        if stop.is_set():
            return
        delay = backoff.next()
        on_restart(reason, error, delay)
        stop.wait(delay)
