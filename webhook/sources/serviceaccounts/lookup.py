"""On a cache miss, read that one ServiceAccount from the API server, rate limited as upstream.

Used only with --service-account-lookup-grace-period: an admission waits on the store while
this asks the API server directly; the answer goes into the store and wakes the waiter.
The blocking client call runs in a worker thread (asyncio.to_thread), so the loop keeps
serving other requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from webhook.mutation.serviceaccount import ServiceAccountIdentity
from webhook.objectkeys import key_of
from webhook.sources.kube.client import KubeApiError
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

# upstream: rate.NewLimiter(rate.Every(100*time.Millisecond), 20)
LOOKUPS_PER_SECOND = 10.0
LOOKUP_BURST = 20


class TokenBucket:
    """`reserve()` takes a token now and says how long to wait before using it (Go's rate.Reserve)."""

    def __init__(
        self,
        rate: float = LOOKUPS_PER_SECOND,
        burst: int = LOOKUP_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def reserve(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(slots=True, eq=False)
class ServiceAccountLookup:
    store: ServiceAccountStore
    _: KW_ONLY
    get: Callable[[str, str], JsonObject | None]  # the API server's answer, None if not found
    convert: Callable[[str, str, JsonObject], ServiceAccountIdentity]
    put: Callable[[str, ServiceAccountIdentity], None]  # into the store, waking the waiter
    grace_period: float
    limiter: TokenBucket = field(default_factory=TokenBucket)
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)

    def request(self, namespace: str, name: str) -> None:
        """Called on the loop when an admission starts waiting for a missing ServiceAccount."""
        key = key_of(namespace, name)
        if key in self._in_flight:
            return
        task = asyncio.get_running_loop().create_task(self._fetch(namespace, name))
        self._in_flight[key] = task
        task.add_done_callback(lambda _: self._in_flight.pop(key, None))

    async def _fetch(self, namespace: str, name: str) -> None:
        delay = self.limiter.reserve()
        if delay >= self.grace_period:
            logger.info(
                "lookup of serviceaccount %s/%s skipped: rate limited past the grace period",
                namespace,
                name,
            )
            return
        if delay:
            await asyncio.sleep(delay)
        try:
            obj = await asyncio.to_thread(self.get, namespace, name)
        except KubeApiError as exc:
            logger.warning("lookup of serviceaccount %s/%s failed: %s", namespace, name, exc)
            return
        if obj is None:
            logger.info("lookup of serviceaccount %s/%s: not found", namespace, name)
            return
        if self.store.get(namespace, name) is None:
            self.put(key_of(namespace, name), self.convert(namespace, name, obj))
