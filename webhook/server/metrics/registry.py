"""Prometheus metrics. Names that upstream has keep upstream's name, so dashboards carry over.

Upstream's families (pkg/handler/middleware.go, pkg/cache/cache.go) are exposed exactly as
its Go client writes them, through exposition.go_text: `http_request_count` and
`pod_identity_webhook_pod_count` are `counter`s without the `_total` Python would add, and a
labelled family appears only once it has a child, as a Go *Vec does. The per-admission ones
are plain numbers read at scrape time (requestmetrics.py, `UpstreamCounters`). Counters
that are ours alone keep the `_total` form.
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

from webhook.server.metrics.exposition import go_text
from webhook.server.metrics.requestmetrics import RequestMetrics


class UpstreamCounters(Collector):
    """pod_identity_webhook_pod_count and _missing_sa_count (pkg/handler/middleware.go).

    Both are incremented where upstream's handler.go buildPodPatchConfig increments them:
    pod_count{method} for every pod that has an identity, patched or already patched;
    missing_sa_count for every pod whose ServiceAccount is in neither cache.
    """

    def __init__(self) -> None:
        self.pod_count: dict[str, int] = {}
        self.missing_sa = 0

    def pod_identified(self, method: str) -> None:
        self.pod_count[method] = self.pod_count.get(method, 0) + 1

    def service_account_missing(self) -> None:
        self.missing_sa += 1

    def collect(self) -> Iterator[Metric]:
        name = "pod_identity_webhook_pod_count"
        pods = Metric(
            name,
            "Indicator to how many pods are using sts web identity or container credentials",
            "counter",
        )
        for method, count in self.pod_count.items():
            pods.add_sample(name, {"method": method}, float(count))
        yield pods
        name = "pod_identity_webhook_missing_sa_count"
        missing = Metric(
            name,
            "Service account did not have the right annotations or was not found in the cache.",
            "counter",
        )
        if self.missing_sa:
            missing.add_sample(name, {}, float(self.missing_sa))
        yield missing


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_* as Go's default registry has them (CPU, memory, fds, start time), so
        # upstream's dashboards keep their resource panels; plus python_info and python_gc_*
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        requests = RequestMetrics()
        r.register(requests)
        # Every admission request lands here: plain numbers, read at scrape time.
        self.observe_request = requests.observe
        upstream = UpstreamCounters()
        r.register(upstream)
        self.pod_identified = upstream.pod_identified
        self.service_account_missing = upstream.service_account_missing
        self._add_source_series(r)
        self._add_protection_series(r)

    def _add_source_series(self, r: CollectorRegistry) -> None:
        """What the sources and the certificate hold and how their reloads and watches go."""
        # upstream (pkg/cache/cache.go): 1 once any ServiceAccount entered the cache
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

    def _add_protection_series(self, r: CollectorRegistry) -> None:
        """Requests cut short, untrusted input ignored, background work kept alive."""
        self.over_budget = Counter(
            "pod_identity_webhook_time_budget_exceeded",
            "Admissions answered unchanged because deciding took longer than --request-time-budget.",
            registry=r,
        )
        self.refused = Counter(
            "pod_identity_webhook_pods_refused",
            "Pods refused because they carry --require-identity-label but get no identity, "
            "by outcome (strict mode, docs/deploy.md).",
            ["outcome"],
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

    def exposition(self) -> bytes:
        """/metrics as upstream's Go client writes it (exposition.py)."""
        return go_text([self.registry])

    def config_reloaded(self, source: str, success: bool) -> None:
        self.config_reloads.labels(source, "success" if success else "failure").inc()
