"""The ServiceAccount cache fed by a cluster-wide watch: what each event does to the store."""

from __future__ import annotations

import logging
from collections.abc import Callable

from webhook.mutation.serviceaccount import (
    IdentityDefaults,
    ServiceAccountIdentity,
    identity_of_service_account,
)
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.types import JsonObject

logger = logging.getLogger(__name__)

CacheReport = Callable[[int], None]  # the entries in the cache
# (annotations without the prefix) of one object whose values were ignored or adjusted
InvalidReport = Callable[[tuple[str, ...]], None]


def report_invalid(
    identity: ServiceAccountIdentity, what: str, count: InvalidReport | None
) -> None:
    """Log and count annotations ignored or adjusted; the values themselves are never logged."""
    if not identity.invalid:
        return
    logger.warning(
        "%s: annotation %s ignored or adjusted (see the admission warning)",
        what,
        ", ".join(identity.invalid),
    )
    if count is not None:
        count(identity.invalid)


def annotations_of(obj: JsonObject) -> dict[str, str]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return {}
    return {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}


class ServiceAccountSink:
    """Parses a ServiceAccount once, in the watch thread; applies changes to the store on the loop.

    Equal identities share one object (most ServiceAccounts have none, many share a role),
    which keeps the cache to a key string and a dict slot per ServiceAccount.
    """

    def __init__(
        self,
        store: ServiceAccountStore,
        defaults: IdentityDefaults,
        *,
        report: CacheReport,
        count_invalid: InvalidReport | None = None,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self._report = report
        self._count_invalid = count_invalid
        self._interned: dict[ServiceAccountIdentity, ServiceAccountIdentity] = {}

    # thread side

    def begin_list(self) -> None:
        self._interned = {}

    def convert(self, namespace: str, name: str, obj: JsonObject) -> ServiceAccountIdentity:
        identity = identity_of_service_account(namespace, name, annotations_of(obj), self.defaults)
        report_invalid(identity, f"ServiceAccount {namespace}/{name}", self._count_invalid)
        return self._interned.setdefault(identity, identity)

    # loop side

    def replace_all(self, entries: dict[str, ServiceAccountIdentity]) -> None:
        self.store.replace_all(entries)
        self._report(len(entries))

    def put(self, key: str, value: ServiceAccountIdentity) -> None:
        self.store.put(key, value)
        self._report(len(self.store))

    def delete(self, key: str) -> None:
        self.store.delete(key)
        self._report(len(self.store))
