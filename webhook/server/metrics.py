"""Prometheus metrics. Names that upstream has keep upstream's name, so dashboards carry over.

Go's client exposes a counter under exactly its name (`http_request_count`); Python's always
appends `_total`. Upstream's counters are therefore kept in a private registry and exposed
under their Go names by `_GoNamedCounters`, typed `untyped` because the text format ties the
`counter` type to the `_total` name; `http_request_count` and the other per-request series
are built the same way by `RequestMetrics`. Counters that are ours alone keep the `_total`
form.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from webhook.server.requestmetrics import RequestMetrics


class _GoNamedCounters(Collector):
    def __init__(self, counters: CollectorRegistry) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        for family in self._counters.collect():
            metric = Metric(family.name, family.documentation, "unknown")
            for sample in family.samples:
                if sample.name == family.name + "_total":
                    metric.add_sample(family.name, sample.labels, sample.value)
            yield metric


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_* as Go's default registry has them (CPU, memory, fds, start time), so
        # upstream's dashboards keep their resource panels; plus python_info and python_gc_*
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        go_counters = CollectorRegistry(auto_describe=True)
        r.register(_GoNamedCounters(go_counters))
        self._pod_count_children: dict[str, Counter] = {}
        requests = RequestMetrics()
        r.register(requests)
        # Every admission request lands here: plain numbers, read at scrape time.
        self.observe_request = requests.observe
        self.pod_count = Counter(
            "pod_identity_webhook_pod_count",
            "Indicator to how many pods are using sts web identity or container credentials",
            ["method"],
            registry=go_counters,
        )
        self.missing_sa = Counter(
            "pod_identity_webhook_missing_sa_count",
            "Service account did not have the right annotations or was not found in the cache.",
            registry=go_counters,
        )
        self.used = Gauge(
            "pod_identity_webhook_used",
            "Indicator to know pod identity webhook is used",
            registry=r,
        )
        self.fargate_scheduled = Counter(
            "pod_identity_webhook_fargate_pods_scheduled",
            "Pods handed to the Fargate scheduler, by Fargate profile.",
            ["profile"],
            registry=r,
        )
        self.config_reloads = Counter(
            "pod_identity_webhook_config_reloads",
            "Configuration reloads by source and result (success or failure).",
            ["source", "result"],
            registry=r,
        )
        self.cache_size = Gauge(
            "pod_identity_webhook_serviceaccount_cache_size",
            "ServiceAccounts held in the cache.",
            registry=r,
        )
        self.watch_restarts = Counter(
            "pod_identity_webhook_watch_restarts",
            "Kubernetes watches restarted, by resource and reason.",
            ["resource", "reason"],
            registry=r,
        )
        self.certificate_expiry = Gauge(
            "pod_identity_webhook_certificate_expiry_timestamp_seconds",
            "Expiry time of the serving certificate, in seconds since the epoch.",
            registry=r,
        )

        self.over_budget = Counter(
            "pod_identity_webhook_time_budget_exceeded",
            "Admissions answered unchanged because deciding took longer than --request-time-budget.",
            registry=r,
        )
        # Untrusted input that was ignored, and background work kept alive: docs/cluster.md.
        self.invalid_annotations = Counter(
            "pod_identity_webhook_invalid_annotations",
            "Annotation values ignored or adjusted (not a whole number in range, not true or "
            "false, not a CSV record), by object kind and annotation.",
            ["source", "annotation"],
            registry=r,
        )
        self.skipped_objects = Counter(
            "pod_identity_webhook_skipped_objects",
            "Objects from a watch or a file that could not be read and were left out, by source.",
            ["source"],
            registry=r,
        )
        self.background_restarts = Counter(
            "pod_identity_webhook_background_restarts",
            "Background tasks (watches, file reloads) started again after they stopped, by task.",
            ["task"],
            registry=r,
        )

    def pod_mutated(self, method: str) -> None:
        child = self._pod_count_children.get(method)
        if child is None:
            child = self._pod_count_children[method] = self.pod_count.labels(method)
        child.inc()

    def config_reloaded(self, source: str, success: bool) -> None:
        self.config_reloads.labels(source, "success" if success else "failure").inc()
