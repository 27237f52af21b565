"""The ServiceAccount identity store: one dict, swapped whole on a full load, edited per event.

Entries are keyed "namespace/name" (one string is smaller than a tuple of two). Readers on the
event loop never see a half-written map: a re-list builds a new dict and swaps it in with one
assignment. Waiters let an admission wait a short grace period for a ServiceAccount that is
about to arrive, without blocking the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from webhook.mutation.serviceaccount import ServiceAccountIdentity
from webhook.objectkeys import key_of


class ServiceAccountStore:
    def __init__(self) -> None:
        self._entries: dict[str, ServiceAccountIdentity] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.loaded = False
        self.not_ready_reason = "ServiceAccounts have not been loaded yet"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, namespace: str, name: str) -> ServiceAccountIdentity | None:
        return self._entries.get(f"{namespace}/{name}")

    def snapshot(self) -> Mapping[str, ServiceAccountIdentity]:
        return self._entries

    def replace_all(self, entries: dict[str, ServiceAccountIdentity]) -> None:
        self._entries = entries
        self.loaded = True
        self.not_ready_reason = ""
        for key in [key for key in self._waiters if key in entries]:
            self._wake(key)

    def put(self, key: str, identity: ServiceAccountIdentity) -> None:
        self._entries[key] = identity
        if key in self._waiters:
            self._wake(key)

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def wait_for(
        self, namespace: str, name: str, timeout: float
    ) -> ServiceAccountIdentity | None:
        """The entry, waiting up to `timeout` seconds for it to arrive when it is missing."""
        key = key_of(namespace, name)
        found = self._entries.get(key)
        if found is not None or timeout <= 0:
            return found
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                if future in waiters:
                    waiters.remove(future)
                if not waiters:
                    del self._waiters[key]
        return self._entries.get(key)

    def _wake(self, key: str) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)
