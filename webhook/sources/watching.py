"""List-then-watch of one Kubernetes collection, in three layers (as kopf's watching.py).

- `infinite_watch` restarts `continuous_watch` forever, backing off after errors;
- `continuous_watch` lists (page by page), then watches from the list's resourceVersion,
  and returns to force a re-list on 410 Gone or when the resync period is over;
- the requests themselves (`WatchRequests`, built in kubeapi.py) know nothing of this.

These run in a background thread (the kubernetes client is synchronous). Nothing here
touches the cache: callers consume the yielded events and hand them to the event loop.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from webhook.sources.kubeapi import KubeApiError, Page, ResourceExpired
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 30.0
# Without a resync period, a watch still ends now and then, as client-go's do (5 minutes).
MAX_WATCH_SECONDS = 300


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
    RESYNC = "resync"  # the resync period is over
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
    resync_period: float,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Event | Bookmark | Restart]:
    """List, then watch; yields a final Restart saying why it stopped (never raises 410)."""
    deadline = clock() + resync_period if resync_period > 0 else math.inf
    yield Bookmark.LISTING
    continue_token: str | None = None
    try:
        while True:
            page = requests.list_page(continue_token)
            for obj in page.items:
                yield Event(LISTED, obj)
            if not page.continue_token:
                break
            continue_token = page.continue_token
    except ResourceExpired as exc:
        logger.info("%s: list continuation expired (%s); listing again", requests.what, exc)
        yield Restart.EXPIRED
        return
    except KubeApiError as exc:
        raise WatchError(str(exc)) from exc
    resource_version = page.resource_version
    yield Bookmark.LISTED

    while not stop.is_set():
        remaining = deadline - clock()
        if remaining <= 0:
            yield Restart.RESYNC
            return
        timeout = max(1, math.ceil(min(remaining, MAX_WATCH_SECONDS)))
        try:
            for raw in requests.watch(resource_version, timeout_seconds=timeout):
                kind = raw.get("type")
                body = raw.get("object")
                if not isinstance(body, dict):
                    logger.warning(
                        "%s: watch event %r without an object; skipped", requests.what, kind
                    )
                    continue
                if kind == "ERROR":
                    code = body.get("code")
                    message = body.get("message") or body.get("reason") or ""
                    if code == 410:
                        logger.info(
                            "%s: resourceVersion %s expired (%s); listing again",
                            requests.what,
                            resource_version,
                            message,
                        )
                        yield Restart.EXPIRED
                        return
                    raise WatchError(f"{requests.what}: watch error {code}: {message}")
                resource_version = _resource_version(body) or resource_version
                if kind == "BOOKMARK":
                    continue
                if kind in _CHANGES:
                    yield Event(kind, body)
                else:
                    logger.warning("%s: unknown watch event type %r; skipped", requests.what, kind)
                if stop.is_set():
                    return
        except ResourceExpired as exc:
            logger.info("%s: %s; listing again", requests.what, exc)
            yield Restart.EXPIRED
            return
        except KubeApiError as exc:
            raise WatchError(str(exc)) from exc


class Backoff:
    """Capped exponential back-off with jitter; `reset` after a success."""

    def __init__(
        self,
        initial: float = BACKOFF_INITIAL_SECONDS,
        maximum: float = BACKOFF_MAX_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * self._rng.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next = self.initial


def infinite_watch(
    requests: WatchRequests,
    *,
    resync_period: float,
    stop: threading.Event,
    on_restart: Callable[[Restart, str], None],
    backoff: Backoff | None = None,
    _iterations: int | None = None,
) -> Iterator[Event | Bookmark]:
    """Keep the collection watched until `stop` is set; `on_restart(reason, error)` each restart."""
    backoff = backoff or Backoff()
    iterations = 0
    while not stop.is_set() and (_iterations is None or iterations < _iterations):
        iterations += 1
        try:
            for item in continuous_watch(requests, resync_period=resync_period, stop=stop):
                if isinstance(item, Restart):
                    on_restart(item, "")
                    break
                if item is Bookmark.LISTED:
                    backoff.reset()
                yield item
        except WatchError as exc:
            on_restart(Restart.ERROR, str(exc))
            stop.wait(backoff.next())
