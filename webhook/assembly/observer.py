"""The sources' observer for `serve`: what they report becomes the webhook's metrics."""

from __future__ import annotations

from webhook.server.metrics.registry import Metrics


class MetricsObserver:
    """webhook.sources.observer.SourceObserver, counted in `metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def config_reloaded(self, source: str, success: bool) -> None:
        self.metrics.config_reloaded(source, success)

    def cache_reported(self, size: int) -> None:
        self.metrics.cache_size.set(size)
        if size:  # upstream: any ServiceAccount cached, with a role or not; never reset
            self.metrics.used.set(1)

    def watch_restarted(self, resource: str, reason: str) -> None:
        self.metrics.watch_restarts.labels(resource, reason).inc()

    def object_skipped(self, source: str) -> None:
        self.metrics.skipped_objects.labels(source).inc()

    def annotations_invalid(self, annotations: tuple[str, ...]) -> None:
        for annotation in annotations:
            self.metrics.invalid_annotations.labels("serviceaccount", annotation).inc()

    def task_restarted(self, name: str) -> None:
        self.metrics.background_restarts.labels(name).inc()
