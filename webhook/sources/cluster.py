"""Wiring of the cluster sources: the ServiceAccount watch, the ConfigMap watch, the miss lookup."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

from webhook.flags.settings import Settings
from webhook.mutation.serviceaccount import IdentityDefaults
from webhook.sources.kube.client import ResourceRequests, get_service_account, new_core_api
from webhook.sources.kube.resourcewatch import ResourceWatch, Sink
from webhook.sources.observer import SourceObserver
from webhook.sources.serviceaccounts.configmap import CONFIG_MAP_NAME
from webhook.sources.serviceaccounts.configmapwatch import ConfigMapSource
from webhook.sources.serviceaccounts.lookup import ServiceAccountLookup
from webhook.sources.serviceaccounts.store import ServiceAccountStore
from webhook.sources.serviceaccounts.watch import ServiceAccountSink

logger = logging.getLogger(__name__)

SERVICE_ACCOUNTS = "serviceaccounts"
CONFIG_MAPS = "configmaps"

V = TypeVar("V")


@dataclass
class ClusterSources:
    watches: list[ResourceWatch[Any]] = field(default_factory=list)
    config_map: ConfigMapSource | None = None
    lookup: ServiceAccountLookup | None = None


def build_cluster_sources(
    settings: Settings,
    configuration: Any,
    *,
    store: ServiceAccountStore | None,
    defaults: IdentityDefaults,
    observer: SourceObserver,
) -> ClusterSources:
    """`store` is None when ServiceAccounts come from a file and only the ConfigMap is watched."""
    sources = ClusterSources()
    if store is not None:
        sink = ServiceAccountSink(
            store,
            defaults,
            report=observer.cache_reported,
            count_invalid=observer.annotations_invalid,
        )
        core = new_core_api(configuration)
        requests = ResourceRequests(
            core.list_service_account_for_all_namespaces, what="serviceaccounts (all namespaces)"
        )
        sources.watches.append(
            _watch(requests, sink, SERVICE_ACCOUNTS, settings.resync_period, observer)
        )
        logger.info("ServiceAccounts: list and watch cluster-wide at %s", configuration.host)
        if settings.service_account_lookup_grace_period > 0:
            sources.lookup = ServiceAccountLookup(
                store,
                get=functools.partial(get_service_account, new_core_api(configuration)),
                convert=sink.convert,
                put=sink.put,
                grace_period=settings.service_account_lookup_grace_period,
            )
    if settings.watch_config_map:
        source = ConfigMapSource(defaults, on_reload=observer.config_reloaded)
        sources.watches.append(
            _watch(
                _config_map_requests(configuration, settings.namespace),
                source,
                CONFIG_MAPS,
                settings.resync_period,
                observer,
            )
        )
        sources.config_map = source
        logger.info(
            "ConfigMap mode: watching ConfigMap %s in namespace %s",
            CONFIG_MAP_NAME,
            settings.namespace,
        )
    return sources


def _config_map_requests(configuration: Any, namespace: str) -> ResourceRequests:
    """Only the one ConfigMap, by a field selector: the Role allows nothing else."""
    core = new_core_api(configuration)
    return ResourceRequests(
        core.list_namespaced_config_map,
        what=f"configmap {namespace}/{CONFIG_MAP_NAME}",
        namespace=namespace,
        field_selector=f"metadata.name={CONFIG_MAP_NAME}",
    )


def _watch(
    requests: ResourceRequests,
    sink: Sink[V],
    resource: str,
    resync_period: float,
    observer: SourceObserver,
) -> ResourceWatch[V]:
    return ResourceWatch(
        requests,
        sink,
        resource=resource,
        resync_period=resync_period,
        count_restart=observer.watch_restarted,
        count_skip=observer.object_skipped,
    )
